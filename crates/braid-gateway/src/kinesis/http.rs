//! The HTTP layer: `POST /` with `X-Amz-Target`, request ids, CORS, authentication presence,
//! body limits, and the answer in the request's content type. Every answer, including every
//! error and a panic caught in an operation, is an AWS-shaped response with `x-amzn-RequestId`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::{FutureExt, StreamExt};

use super::backend::Backend;
use super::error::WireError;
use super::ops::{dispatch, is_known, TARGET_PREFIX};
use super::put_fast;
use super::sigv4::{self, KeyStore};
use super::value::{decode, encode, Format, Value};

/// Largest request body: a 10 MiB PutRecords grows by 4/3 in base64, plus keys and framing.
pub const REQUEST_BYTES_MAX: usize = 16 * 1024 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The router's state: the backend and the access keys signatures are verified against.
#[derive(Clone)]
struct Shared<B> {
    backend: B,
    keys: std::sync::Arc<KeyStore>,
}

/// The Kinesis API as an axum router (every path; AWS ignores it), accepting any credentials.
pub fn router<B: Backend>(backend: B) -> Router {
    router_with_keys(backend, Vec::new())
}

/// [`router`] verifying each request's SigV4 signature against `keys`; empty `keys` accept
/// any well-formed signature.
pub fn router_with_keys<B: Backend>(backend: B, keys: Vec<braid_node::AccessKey>) -> Router {
    Router::new().fallback(handle::<B>).with_state(Shared {
        backend,
        keys: std::sync::Arc::new(KeyStore::new(&keys)),
    })
}

/// Serves the Kinesis API on `listener` (HTTP/1.1, and HTTP/2 with prior knowledge: h2c)
/// until `shutdown` resolves.
pub async fn serve<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: B,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_keys(listener, backend, Vec::new(), shutdown).await
}

/// [`serve`] verifying SigV4 signatures against `keys` (see [`router_with_keys`]).
pub async fn serve_with_keys<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: B,
    keys: Vec<braid_node::AccessKey>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    axum::serve(listener, router_with_keys(backend, keys))
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`serve_with_keys`] over TLS with `tls` (from [`super::tls::server_config`]): HTTPS with
/// ALPN `h2` and `http/1.1`; a failed handshake closes only that connection.
pub async fn serve_tls_with_keys<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: B,
    keys: Vec<braid_node::AccessKey>,
    tls: std::sync::Arc<super::tls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    super::tls::serve(listener, router_with_keys(backend, keys), tls, shutdown).await
}

/// A version-4 UUID, as AWS's request ids are.
fn request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn response(format: Format, status: u16, body: &Value) -> Response {
    response_bytes(format, status, encode(format, body))
}

fn response_bytes(format: Format, status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

/// An AWS error response: `{"__type": ..., "message": ...}` in the request's format.
pub fn error_response(format: Format, e: &WireError) -> Response {
    let body = Value::map([
        ("__type", Value::str(e.type_name)),
        ("message", Value::str(e.message.clone())),
    ]);
    response(format, e.status, &body)
}

async fn handle<B: Backend>(State(shared): State<Shared<B>>, req: Request) -> Response {
    let rid = request_id();
    let origin = req.headers().contains_key(header::ORIGIN);
    let format = Format::from_content_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut resp = match AssertUnwindSafe(answer(shared.backend, shared.keys, req, format))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(request_id = %rid, %target, "Kinesis API operation panicked");
            error_response(
                format,
                &WireError::internal(format!("Internal service failure (request {rid}).")),
            )
        }
    };
    let status = resp.status();
    if status.is_server_error() {
        tracing::warn!(request_id = %rid, %target, %status, "Kinesis API error");
    } else {
        tracing::debug!(request_id = %rid, %target, %status, "Kinesis API");
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert(REQUEST_ID_HEADER, v);
    }
    let id2: [u8; 48] = std::array::from_fn(|_| rand::random());
    if let Ok(v) = HeaderValue::from_str(&STANDARD.encode(id2)) {
        h.insert("x-amz-id-2", v);
    }
    if origin {
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(
                "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date",
            ),
        );
    }
    resp
}

fn cors_preflight(headers: &HeaderMap) -> Response {
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    if let Some(v) = headers.get("access-control-request-headers") {
        h.insert("access-control-allow-headers", v.clone());
    }
    if let Some(v) = headers.get("access-control-request-method") {
        h.insert("access-control-allow-methods", v.clone());
    }
    h.insert("access-control-max-age", HeaderValue::from_static("172800"));
    r
}

/// AWS signs every request: without a signature it answers MissingAuthenticationToken. With no
/// access keys configured, any well-formed SigV4 header (or presigned query) passes; with keys,
/// [`sigv4::verify`] then checks the signature itself once the body is read.
fn check_authentication(headers: &HeaderMap, query: &str) -> Result<(), WireError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let query_keys: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .collect();
    let presigned = query_keys.contains(&"X-Amz-Algorithm");
    match (auth, presigned) {
        (Some(_), true) => Err(WireError::new(
            400,
            "InvalidSignatureException",
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        )),
        (None, false) => Err(sigv4::missing_token()),
        (Some(auth), false) => {
            let params: Vec<&str> = auth
                .split([',', ' '])
                .skip(1)
                .filter_map(|p| p.trim().split('=').next())
                .collect();
            let mut msg = String::new();
            for p in ["Credential", "Signature", "SignedHeaders"] {
                if !params.contains(&p) {
                    msg.push_str(&format!("Authorization header requires '{p}' parameter. "));
                }
            }
            if !headers.contains_key("x-amz-date") && !headers.contains_key(header::DATE) {
                msg.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
            }
            if msg.is_empty() {
                Ok(())
            } else {
                Err(WireError::new(
                    400,
                    "IncompleteSignatureException",
                    format!("{msg}Authorization={auth}"),
                ))
            }
        }
        (None, true) => {
            let mut msg = String::new();
            for p in [
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Signature",
                "X-Amz-SignedHeaders",
                "X-Amz-Date",
            ] {
                if !query_keys.contains(&p) {
                    msg.push_str(&format!("AWS query-string parameters must include '{p}'. "));
                }
            }
            if msg.is_empty() {
                Ok(())
            } else {
                Err(WireError::new(
                    400,
                    "IncompleteSignatureException",
                    format!("{msg}Re-examine the query-string parameters."),
                ))
            }
        }
    }
}

async fn answer<B: Backend>(
    backend: B,
    keys: std::sync::Arc<KeyStore>,
    req: Request,
    format: Format,
) -> Response {
    let (mut parts, body) = req.into_parts();
    // HTTP/2 carries the host in `:authority`, which hyper keeps in the URI; clients (the Java
    // SDK v2 over Netty among them) sign it as `host`, so give it back that name for SigV4.
    if !parts.headers.contains_key(header::HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, v);
        }
    }
    if parts.method == Method::OPTIONS && parts.headers.contains_key(header::ORIGIN) {
        return cors_preflight(&parts.headers);
    }
    if parts.method != Method::POST {
        return error_response(
            format,
            &WireError::new(
                403,
                "AccessDeniedException",
                "Unable to determine service/operation name to be authorized",
            ),
        );
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = match target.split_once('.') {
        Some((TARGET_PREFIX, op)) if is_known(op) => op.to_string(),
        _ => {
            return error_response(
                format,
                &WireError::unknown_operation(format!(
                    "X-Amz-Target '{}' names no operation of {TARGET_PREFIX}.",
                    target.chars().take(256).collect::<String>()
                )),
            )
        }
    };
    if let Err(e) = check_authentication(&parts.headers, parts.uri.query().unwrap_or("")) {
        return error_response(format, &e);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error_response(
            format,
            &WireError::new(
                413,
                "RequestEntityTooLargeException",
                format!("Request body is larger than {REQUEST_BYTES_MAX} bytes."),
            ),
        )
    };
    if declared
        .map(|n| n > REQUEST_BYTES_MAX as u64)
        .unwrap_or(false)
    {
        return too_large();
    }
    let mut bytes: Vec<u8> =
        Vec::with_capacity(declared.unwrap_or(0).min(REQUEST_BYTES_MAX as u64) as usize);
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(c) if bytes.len() + c.len() > REQUEST_BYTES_MAX => return too_large(),
            Ok(c) => bytes.extend_from_slice(&c),
            Err(e) => {
                return error_response(
                    format,
                    &WireError::serialization(format!("Could not read the request body: {e}")),
                )
            }
        }
    }
    if !keys.is_empty() {
        if let Err(e) = sigv4::verify(
            &keys,
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &parts.headers,
            &bytes,
        ) {
            return error_response(format, &e);
        }
    }
    // PutRecords / PutRecord with a plainly valid body: straight into the backend's request;
    // anything else (every error included) takes the generic path below.
    if let Some(req) = put_fast::parse(&op, format, &bytes) {
        drop(bytes);
        return match put_fast::run(&backend, format, req).await {
            Ok(body) => response_bytes(format, 200, body),
            Err(e) => error_response(format, &e),
        };
    }
    let value = match decode(format, &bytes) {
        Ok(v) => v,
        Err(e) => return error_response(format, &WireError::serialization(e.0)),
    };
    match dispatch(&backend, &op, format, &value).await {
        Ok(out) => response(format, 200, &out),
        Err(e) => error_response(format, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        for _ in 0..100 {
            let id = request_id();
            assert_eq!(id.len(), 36, "{id}");
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'));
            assert!("89ab".contains(&parts[3][..1]));
        }
    }

    #[test]
    fn authentication() {
        let mut h = HeaderMap::new();
        let e = check_authentication(&h, "").unwrap_err();
        assert_eq!(e.type_name, "MissingAuthenticationTokenException");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20200101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"));
        let e = check_authentication(&h, "").unwrap_err();
        assert_eq!(e.type_name, "IncompleteSignatureException");
        assert!(e.message.contains("X-Amz-Date"), "{}", e.message);
        h.insert("x-amz-date", HeaderValue::from_static("20200101T000000Z"));
        assert!(check_authentication(&h, "").is_ok());
        let e = check_authentication(&h, "X-Amz-Algorithm=AWS4-HMAC-SHA256").unwrap_err();
        assert_eq!(e.type_name, "InvalidSignatureException");
        let q = "X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-SignedHeaders=d&X-Amz-Date=e";
        assert!(check_authentication(&HeaderMap::new(), q).is_ok());
        let e = check_authentication(&HeaderMap::new(), "X-Amz-Algorithm=a").unwrap_err();
        assert_eq!(e.type_name, "IncompleteSignatureException");
        let mut bad = HeaderMap::new();
        bad.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
        );
        bad.insert("x-amz-date", HeaderValue::from_static("20200101T000000Z"));
        let e = check_authentication(&bad, "").unwrap_err();
        assert!(e.message.contains("'Signature'") && e.message.contains("'SignedHeaders'"));
    }
}
