//! AWS Signature Version 4 verification of Kinesis requests against configured access keys,
//! in both forms: the `Authorization: AWS4-HMAC-SHA256 ...` header with `X-Amz-Date`, and the
//! presigned query string (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`).
//!
//! With no keys configured nothing is verified here (the HTTP layer only checks that some
//! signature is present), as before keys existed.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use braid_node::AccessKey;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::WireError;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The secrets of the configured access keys, by access key id.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    secrets: HashMap<String, String>,
}

impl KeyStore {
    pub fn new(keys: &[AccessKey]) -> KeyStore {
        KeyStore {
            secrets: keys
                .iter()
                .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
                .collect(),
        }
    }

    /// No keys: signatures are not verified.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.secrets.get(access_key_id).map(String::as_str)
    }
}

pub fn missing_token() -> WireError {
    WireError::new(
        400,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
}

fn incomplete(message: impl Into<String>) -> WireError {
    WireError::new(400, "IncompleteSignatureException", message)
}

pub fn unrecognized_client() -> WireError {
    WireError::new(
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
}

pub fn invalid_signature() -> WireError {
    WireError::new(
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m
}

/// The parsed signature of a request, from its header or its query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// `DATE/REGION/SERVICE/aws4_request`.
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, in the order given (`;`-separated on the wire).
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// The `X-Amz-Date` timestamp (`YYYYMMDDTHHMMSSZ`).
    pub timestamp: String,
    pub presigned: bool,
}

/// Splits `AKID/DATE/REGION/SERVICE/aws4_request`.
fn parse_credential(
    credential: &str,
) -> Result<(String, String, String, String, String), WireError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5
        || parts[4] != "aws4_request"
        || parts[0].is_empty()
        || parts[1].len() != 8
        || !parts[1].bytes().all(|b| b.is_ascii_digit())
        || parts[2].is_empty()
        || parts[3].is_empty()
    {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region, service and date, as ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request. Credential={credential}"
        )));
    }
    Ok((
        parts[0].to_string(),
        parts[1..].join("/"),
        parts[1].to_string(),
        parts[2].to_string(),
        parts[3].to_string(),
    ))
}

fn parse_signed_headers(s: &str) -> Result<Vec<String>, WireError> {
    let names: Vec<String> = s
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err(incomplete(format!("SignedHeaders is malformed: {s}")));
    }
    Ok(names)
}

fn valid_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..15].iter().all(u8::is_ascii_digit)
}

/// Parses an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// header (with `X-Amz-Date` from `headers`).
pub fn parse_authorization(auth: &str, headers: &HeaderMap) -> Result<Signed, WireError> {
    let bad = |what: &str| incomplete(format!("{what} Authorization={auth}"));
    let rest = auth
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| bad("Authorization header must start with 'AWS4-HMAC-SHA256 '."))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(&format!("'{part}' is not a key=value pair.")))?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let mut msg = String::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if v.is_none() {
            msg.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let timestamp = headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    if timestamp.is_none() {
        msg.push_str("Authorization header requires existence of a 'X-Amz-Date' header. ");
    }
    if !msg.is_empty() {
        return Err(incomplete(format!("{msg}Authorization={auth}")));
    }
    let timestamp = timestamp.unwrap_or_default();
    if !valid_timestamp(&timestamp) {
        return Err(incomplete(format!(
            "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z': {timestamp}"
        )));
    }
    let (access_key_id, scope, date, region, service) =
        parse_credential(credential.unwrap_or_default())?;
    Ok(Signed {
        access_key_id,
        scope,
        date,
        region,
        service,
        signed_headers: parse_signed_headers(signed_headers.unwrap_or_default())?,
        signature: signature.unwrap_or_default().to_string(),
        timestamp,
        presigned: false,
    })
}

/// Percent-decodes a query-string component (`+` is kept: SigV4 clients encode spaces as %20).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = unhex(&s[i + 1..i + 3]) {
                out.push(v[0]);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4's URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX` (uppercase).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string's (name, value) pairs, decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Parses a presigned query string's signature parameters.
pub fn parse_presigned(query: &str) -> Result<Signed, WireError> {
    let pairs = query_pairs(query);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut msg = String::new();
    for p in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if get(p).is_none() {
            msg.push_str(&format!("AWS query-string parameters must include '{p}'. "));
        }
    }
    if !msg.is_empty() {
        return Err(incomplete(format!(
            "{msg}Re-examine the query-string parameters."
        )));
    }
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(incomplete(
            "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'.",
        ));
    }
    let timestamp = get("X-Amz-Date").unwrap_or_default().to_string();
    if !valid_timestamp(&timestamp) {
        return Err(incomplete(format!(
            "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z': {timestamp}"
        )));
    }
    let (access_key_id, scope, date, region, service) =
        parse_credential(get("X-Amz-Credential").unwrap_or_default())?;
    Ok(Signed {
        access_key_id,
        scope,
        date,
        region,
        service,
        signed_headers: parse_signed_headers(get("X-Amz-SignedHeaders").unwrap_or_default())?,
        signature: get("X-Amz-Signature").unwrap_or_default().to_string(),
        timestamp,
        presigned: true,
    })
}

/// The canonical query string: pairs URI-encoded, sorted by name then value, `&`-joined;
/// `X-Amz-Signature` left out for presigned requests.
pub fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 canonicalises it: trimmed, runs of spaces collapsed to one.
fn canonical_value(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name:value\n` for each signed header, sorted by name (several values of one header are
/// joined with `,`). None when a signed header is absent.
pub fn canonical_headers(headers: &HeaderMap, signed: &[String]) -> Option<String> {
    let mut names: Vec<&String> = signed.iter().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| canonical_value(v.as_bytes()))
            .collect();
        if values.is_empty() {
            return None;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Some(out)
}

/// The canonical request. `path` is the request's URI path as sent (already encoded).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &Signed,
    payload_hash: &str,
) -> Option<String> {
    let uri = if path.is_empty() { "/" } else { path };
    let mut sorted = signed.signed_headers.clone();
    sorted.sort();
    Some(format!(
        "{method}\n{uri}\n{}\n{}\n{}\n{payload_hash}",
        canonical_query(query, signed.presigned),
        canonical_headers(headers, &signed.signed_headers)?,
        sorted.join(";"),
    ))
}

pub fn string_to_sign(signed: &Signed, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        signed.timestamp,
        signed.scope,
        sha256_hex(canonical_request.as_bytes())
    )
}

/// HMAC chain over `"AWS4" + secret`, date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes())
        .finalize()
        .into_bytes()
        .to_vec();
    for part in [region, service, "aws4_request"] {
        k = hmac(&k, part.as_bytes()).finalize().into_bytes().to_vec();
    }
    k
}

/// The hex signature of `string_to_sign` (for tests and clients).
pub fn sign(secret: &str, signed: &Signed, string_to_sign: &str) -> String {
    let key = signing_key(secret, &signed.date, &signed.region, &signed.service);
    hex(&hmac(&key, string_to_sign.as_bytes())
        .finalize()
        .into_bytes())
}

/// Verifies the request's signature against `keys` (which must not be empty). `query` is the
/// raw query string, `path` the raw URI path.
pub fn verify(
    keys: &KeyStore,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WireError> {
    let presigned = query_pairs(query)
        .iter()
        .any(|(k, _)| k == "X-Amz-Algorithm");
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let signed = match (auth, presigned) {
        (Some(_), true) => {
            return Err(WireError::new(
                400,
                "InvalidSignatureException",
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
            ))
        }
        (None, false) => return Err(missing_token()),
        (Some(auth), false) => parse_authorization(&auth, headers)?,
        (None, true) => parse_presigned(query)?,
    };
    let secret = keys
        .secret(&signed.access_key_id)
        .ok_or_else(unrecognized_client)?;
    if !signed.timestamp.starts_with(&signed.date) {
        return Err(WireError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                signed.date,
                &signed.timestamp[..8],
                signed.timestamp
            ),
        ));
    }
    let actual = sha256_hex(body);
    let payload_hash = match headers.get("x-amz-content-sha256") {
        Some(v) => {
            let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
            // A declared hash must be the body's: else the body could change under a valid
            // signature.
            if v != UNSIGNED_PAYLOAD && !v.eq_ignore_ascii_case(&actual) {
                return Err(invalid_signature());
            }
            v
        }
        None if signed.presigned => UNSIGNED_PAYLOAD.to_string(),
        None => actual,
    };
    let canonical = canonical_request(method, path, query, headers, &signed, &payload_hash)
        .ok_or_else(invalid_signature)?;
    let sts = string_to_sign(&signed, &canonical);
    let provided = unhex(&signed.signature).ok_or_else(invalid_signature)?;
    let key = signing_key(secret, &signed.date, &signed.region, &signed.service);
    hmac(&key, sts.as_bytes())
        .verify_slice(&provided)
        .map_err(|_| invalid_signature())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> KeyStore {
        KeyStore::new(&[AccessKey {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
        }])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// The "get-vanilla" case of AWS's SigV4 test suite.
    #[test]
    fn aws_get_vanilla() {
        let mut h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}");
        let signed = parse_authorization(&auth, &h).unwrap();
        let creq = canonical_request("GET", "/", "", &h, &signed, &sha256_hex(b"")).unwrap();
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sign(SECRET, &signed, &string_to_sign(&signed, &creq)), sig);
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        assert!(verify(&keys(), "GET", "/", "", &h, b"").is_ok());
    }

    #[test]
    fn canonicalisation() {
        let h = headers(&[
            ("host", "h.example"),
            ("x-amz-date", "20260101T000000Z"),
            ("x-multi", "  a   b  "),
            ("x-multi", "c"),
            ("x-unsigned", "zzz"),
        ]);
        let signed = Signed {
            access_key_id: AKID.into(),
            scope: "20260101/us-east-1/kinesis/aws4_request".into(),
            date: "20260101".into(),
            region: "us-east-1".into(),
            service: "kinesis".into(),
            signed_headers: vec!["x-multi".into(), "host".into(), "x-amz-date".into()],
            signature: String::new(),
            timestamp: "20260101T000000Z".into(),
            presigned: false,
        };
        let creq = canonical_request("POST", "/", "b=2&a=x y&a=1", &h, &signed, "HASH").unwrap();
        assert_eq!(
            creq,
            "POST\n/\na=1&a=x%20y&b=2\nhost:h.example\nx-amz-date:20260101T000000Z\nx-multi:a b,c\n\nhost;x-amz-date;x-multi\nHASH"
        );
        assert_eq!(canonical_query("X-Amz-Signature=s&A=1", true), "A=1");
        assert_eq!(uri_encode("a/b c~"), "a%2Fb%20c~");
        let missing = Signed {
            signed_headers: vec!["x-absent".into()],
            ..signed.clone()
        };
        assert!(canonical_request("POST", "/", "", &h, &missing, "H").is_none());
        // A self-consistent vector: the signing key chain and signature of a fixed request.
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// A signed Kinesis-like POST with the given body, as an SDK sends it.
    fn signed_post(body: &[u8], with_content_sha: bool) -> HeaderMap {
        let mut h = headers(&[
            ("host", "127.0.0.1:4567"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ("x-amz-date", "20260101T120000Z"),
        ]);
        let mut names = vec!["content-type", "host", "x-amz-date", "x-amz-target"];
        if with_content_sha {
            h.insert(
                "x-amz-content-sha256",
                HeaderValue::from_str(&sha256_hex(body)).unwrap(),
            );
            names.insert(2, "x-amz-content-sha256");
        }
        let signed = Signed {
            access_key_id: AKID.into(),
            scope: "20260101/us-east-1/kinesis/aws4_request".into(),
            date: "20260101".into(),
            region: "us-east-1".into(),
            service: "kinesis".into(),
            signed_headers: names.iter().map(|s| s.to_string()).collect(),
            signature: String::new(),
            timestamp: "20260101T120000Z".into(),
            presigned: false,
        };
        let creq = canonical_request("POST", "/", "", &h, &signed, &sha256_hex(body)).unwrap();
        let sig = sign(SECRET, &signed, &string_to_sign(&signed, &creq));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20260101/us-east-1/kinesis/aws4_request, SignedHeaders={}, Signature={sig}",
            names.join(";")
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        h
    }

    fn type_of(r: Result<(), WireError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => e.type_name,
        }
    }

    fn mutate(s: &str, i: usize) -> String {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'a' { b'b' } else { b'a' };
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let body = br#"{"Limit":10,"ExclusiveStartStreamName":"orders"}"#;
        for with_sha in [false, true] {
            let h = signed_post(body, with_sha);
            assert_eq!(type_of(verify(&keys(), "POST", "/", "", &h, body)), "ok");
            // The signature.
            let auth = h.get(header::AUTHORIZATION).unwrap().to_str().unwrap();
            let at = auth.find("Signature=").unwrap() + "Signature=".len();
            for i in at..auth.len() {
                let mut h2 = h.clone();
                h2.insert(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(&mutate(auth, i)).unwrap(),
                );
                assert_eq!(
                    type_of(verify(&keys(), "POST", "/", "", &h2, body)),
                    "InvalidSignatureException",
                    "signature char {i}"
                );
            }
            // Each signed header's value.
            for name in ["content-type", "host", "x-amz-target", "x-amz-date"] {
                let v = h.get(name).unwrap().to_str().unwrap().to_string();
                for i in 0..v.len() {
                    let mut h2 = h.clone();
                    h2.insert(name, HeaderValue::from_str(&mutate(&v, i)).unwrap());
                    let t = type_of(verify(&keys(), "POST", "/", "", &h2, body));
                    assert!(
                        t == "InvalidSignatureException" || t == "IncompleteSignatureException",
                        "{name} char {i}: {t}"
                    );
                }
            }
            // The body.
            for i in 0..body.len() {
                let b2 = mutate(std::str::from_utf8(body).unwrap(), i);
                assert_eq!(
                    type_of(verify(&keys(), "POST", "/", "", &h, b2.as_bytes())),
                    "InvalidSignatureException",
                    "body char {i}"
                );
            }
            // A query string added after signing.
            assert_eq!(
                type_of(verify(&keys(), "POST", "/", "a=1", &h, body)),
                "InvalidSignatureException"
            );
        }
    }

    #[test]
    fn errors() {
        let body = b"{}";
        let h = signed_post(body, false);
        let other = KeyStore::new(&[AccessKey {
            access_key_id: "OTHER".into(),
            secret_access_key: SECRET.into(),
        }]);
        assert_eq!(
            type_of(verify(&other, "POST", "/", "", &h, body)),
            "UnrecognizedClientException"
        );
        let wrong = KeyStore::new(&[AccessKey {
            access_key_id: AKID.into(),
            secret_access_key: "nope".into(),
        }]);
        let e = verify(&wrong, "POST", "/", "", &h, body).unwrap_err();
        assert_eq!(e, invalid_signature());
        assert_eq!(
            type_of(verify(&keys(), "POST", "/", "", &HeaderMap::new(), body)),
            "MissingAuthenticationTokenException"
        );
        let mut no_date = h.clone();
        no_date.remove("x-amz-date");
        assert_eq!(
            type_of(verify(&keys(), "POST", "/", "", &no_date, body)),
            "IncompleteSignatureException"
        );
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2026/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "Basic abc",
        ] {
            let mut h2 = h.clone();
            h2.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(
                type_of(verify(&keys(), "POST", "/", "", &h2, body)),
                "IncompleteSignatureException",
                "{bad}"
            );
        }
    }

    #[test]
    fn presigned() {
        let h = headers(&[("host", "127.0.0.1:4567")]);
        let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20260101T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host";
        let signed = parse_presigned(&format!("{base}&X-Amz-Signature=00")).unwrap();
        assert_eq!(signed.access_key_id, AKID);
        let creq = canonical_request("GET", "/", base, &h, &signed, UNSIGNED_PAYLOAD).unwrap();
        assert!(creq.ends_with("\nhost\nUNSIGNED-PAYLOAD"), "{creq}");
        let sig = sign(SECRET, &signed, &string_to_sign(&signed, &creq));
        let q = format!("{base}&X-Amz-Signature={sig}");
        assert!(verify(&keys(), "GET", "/", &q, &h, b"").is_ok());
        let q_bad = format!("{base}&X-Amz-Signature={}", mutate(&sig, 0));
        assert_eq!(
            type_of(verify(&keys(), "GET", "/", &q_bad, &h, b"")),
            "InvalidSignatureException"
        );
        assert_eq!(
            type_of(verify(
                &keys(),
                "GET",
                "/",
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                &h,
                b""
            )),
            "IncompleteSignatureException"
        );
    }
}
