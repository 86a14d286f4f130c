//! AWS Signature Version 4 verification of Kinesis requests against configured access keys,
//! in both forms: the `Authorization: AWS4-HMAC-SHA256 ...` header with `X-Amz-Date` (or
//! `Date`), and the presigned query string (`X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`).
//!
//! The checks follow AWS's front end, in its order and with its exceptions and messages:
//! the signature's parameters (IncompleteSignatureException), the signing time against the
//! node's clock (InvalidSignatureException "Signature expired: ..." / "Signature not yet
//! current: ..."), the credential scope (InvalidSignatureException "Credential should be scoped
//! ..."), the access key (UnrecognizedClientException) and last the signature itself
//! (InvalidSignatureException). All are HTTP 400, as Kinesis answers them.
//!
//! With no keys configured nothing is verified here (the HTTP layer only checks that some
//! signature is present), as before keys existed.

use std::collections::HashMap;
use std::num::IntErrorKind;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use braid_node::AccessKey;
use braid_types::limits::{
    SIGV4_CLOCK_SKEW_SECS, SIGV4_PRESIGN_EXPIRES_MAX_SECS, SIGV4_PRESIGN_EXPIRES_MIN_SECS,
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::WireError;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service every Kinesis request's credential scope names.
pub const SERVICE: &str = "kinesis";
const TERMINATOR: &str = "aws4_request";
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
    if !s.len().is_multiple_of(2) {
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

// --- time: SigV4's `YYYYMMDD'T'HHMMSS'Z'` and HTTP's IMF-fixdate, in UTC epoch seconds ------

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Epoch seconds of a UTC date and time; None when a field is out of range.
fn epoch_of(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s)
}

/// Epoch seconds of an ISO-8601 basic timestamp, `YYYYMMDD'T'HHMMSS'Z'`.
fn parse_amz_date(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if !(b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..15].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    let n = |from: usize, to: usize| t[from..to].parse::<i64>().ok();
    epoch_of(
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(9, 11)?,
        n(11, 13)?,
        n(13, 15)?,
    )
}

/// `YYYYMMDD'T'HHMMSS'Z'` of epoch seconds.
fn format_amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3_600,
        s / 60 % 60,
        s % 60
    )
}

/// Epoch seconds of an HTTP `Date` (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if !weekday.ends_with(',') || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let hms: Vec<i64> = time
        .split(':')
        .map(|f| (f.len() == 2).then(|| f.parse().ok()).flatten())
        .collect::<Option<_>>()?;
    let [h, mi, sec] = hms.as_slice() else {
        return None;
    };
    epoch_of(year.parse().ok()?, month, day.parse().ok()?, *h, *mi, *sec)
}

/// Whole seconds since the epoch (negative before it).
fn epoch_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A window as AWS's messages give it: `5 min`, else seconds (`90 sec`).
fn window(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}

fn bad_date(t: &str) -> WireError {
    incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{t}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// The parsed signature of a request, from its header or its query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// `DATE/REGION/SERVICE/TERMINATOR` (`aws4_request`), as given.
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, in the order given (`;`-separated on the wire).
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// The signing time, `YYYYMMDD'T'HHMMSS'Z'`: `X-Amz-Date`, or the `Date` header in that form.
    pub timestamp: String,
    pub presigned: bool,
}

/// Splits `AKID/DATE/REGION/SERVICE/TERMINATOR` (trailing slashes ignored, as AWS does). Only
/// the number of parts is checked here; their values are [`check_scope`]'s.
fn parse_credential(
    credential: &str,
) -> Result<(String, String, String, String, String), WireError> {
    let parts: Vec<&str> = credential.trim_end_matches('/').split('/').collect();
    if parts.len() != 5 {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
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

/// Parses an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// header, with the signing time from `X-Amz-Date` or else `Date` (in `headers`).
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
    let lossy = |v: &header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).trim().to_string();
    // `Date` (RFC 7231) stands in for `X-Amz-Date` when that is absent; the string to sign then
    // carries its time in the basic format.
    let timestamp = match headers.get("x-amz-date") {
        Some(v) => Some(lossy(v)),
        None => headers.get(header::DATE).map(|v| {
            let v = lossy(v);
            parse_http_date(&v).map(format_amz_date).unwrap_or(v)
        }),
    };
    if timestamp.is_none() {
        msg.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !msg.is_empty() {
        return Err(incomplete(format!("{msg}Authorization={auth}")));
    }
    let timestamp = timestamp.unwrap_or_default();
    if parse_amz_date(&timestamp).is_none() {
        return Err(bad_date(&timestamp));
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

/// A presigned query's `X-Amz-Expires`, in seconds: None when absent (the request is then held
/// to the header form's window, ±[`SIGV4_CLOCK_SKEW_SECS`]), else it must be a whole number of
/// seconds in [`SIGV4_PRESIGN_EXPIRES_MIN_SECS`]..=[`SIGV4_PRESIGN_EXPIRES_MAX_SECS`].
fn presign_expires(pairs: &[(String, String)]) -> Result<Option<u64>, WireError> {
    let Some((_, v)) = pairs.iter().find(|(k, _)| k == "X-Amz-Expires") else {
        return Ok(None);
    };
    // The messages are S3's (the one AWS service whose wording for them is on record).
    let too_long = || {
        incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {SIGV4_PRESIGN_EXPIRES_MAX_SECS} seconds"
        ))
    };
    let negative = || incomplete("X-Amz-Expires must be non-negative");
    let secs = match v.parse::<i64>() {
        Ok(s) => s,
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => return Err(too_long()),
        Err(e) if *e.kind() == IntErrorKind::NegOverflow => return Err(negative()),
        Err(_) => return Err(incomplete("X-Amz-Expires should be a number")),
    };
    if secs < 0 {
        return Err(negative());
    }
    if (secs as u64) < SIGV4_PRESIGN_EXPIRES_MIN_SECS {
        return Err(incomplete(format!(
            "X-Amz-Expires must be at least {SIGV4_PRESIGN_EXPIRES_MIN_SECS} (in seconds)"
        )));
    }
    if secs as u64 > SIGV4_PRESIGN_EXPIRES_MAX_SECS {
        return Err(too_long());
    }
    Ok(Some(secs as u64))
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
    if parse_amz_date(&timestamp).is_none() {
        return Err(bad_date(&timestamp));
    }
    presign_expires(&pairs)?;
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

/// What [`verify_with`] holds a request to besides the keys.
#[derive(Clone, Copy, Debug)]
pub struct Checks<'a> {
    /// The service the credential scope must name ([`SERVICE`] for Kinesis).
    pub service: &'a str,
    /// The node's clock.
    pub now: SystemTime,
}

/// The signing time against the clock. A header-signed request's must be within
/// ±[`SIGV4_CLOCK_SKEW_SECS`] of `now`; a presigned one's at most that far in the future, and
/// it is valid until `X-Amz-Date + X-Amz-Expires` (with no `X-Amz-Expires`, for the header
/// form's window). Exactly on a bound is still valid. The messages are AWS's, e.g.
/// `Signature expired: 20130524T000000Z is now earlier than 20130524T000500Z (20130524T001000Z
/// - 5 min.)`; a presigned request past its expiry gets the same form with its own window
/// (`... - 60 min.`, or `... - 90 sec.`).
fn check_time(signed: &Signed, expires: Option<u64>, now: SystemTime) -> Result<(), WireError> {
    let at = parse_amz_date(&signed.timestamp).ok_or_else(|| bad_date(&signed.timestamp))?;
    let now = epoch_secs(now);
    let ahead = SIGV4_CLOCK_SKEW_SECS as i64;
    let behind = expires.map_or(ahead, |e| e as i64);
    if at < now - behind {
        return Err(WireError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature expired: {} is now earlier than {} ({} - {}.)",
                signed.timestamp,
                format_amz_date(now - behind),
                format_amz_date(now),
                window(behind)
            ),
        ));
    }
    if at > now + ahead {
        return Err(WireError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {} is still later than {} ({} + {}.)",
                signed.timestamp,
                format_amz_date(now + ahead),
                format_amz_date(now),
                window(ahead)
            ),
        ));
    }
    Ok(())
}

/// The credential scope against the request: the service must be `service` (`kinesis`), the
/// terminator `aws4_request` and the date the signing time's. Every mismatch is reported, in
/// one InvalidSignatureException, with AWS's sentences (`Credential should be scoped to correct
/// service: 'kinesis'. `, ...).
///
/// Any region is accepted (any non-empty name; an empty one gets AWS's "Credential should be
/// scoped to a valid region, not ''. "): a Braid cluster is one on-premises endpoint rather than
/// one of a set of regional ones, so clients sign for whatever region they are configured with
/// (the `region` of the node config only names ARNs), as they could before signatures were
/// checked.
fn check_scope(signed: &Signed, service: &str) -> Result<(), WireError> {
    let terminator = signed.scope.rsplit('/').next().unwrap_or_default();
    let mut msg = String::new();
    if signed.region.is_empty() {
        msg.push_str(&format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            signed.region
        ));
    }
    if signed.service != service {
        msg.push_str(&format!(
            "Credential should be scoped to correct service: '{service}'. "
        ));
    }
    if terminator != TERMINATOR {
        msg.push_str(&format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        ));
    }
    let day = signed.timestamp.get(..8).unwrap_or_default();
    if signed.date != day {
        msg.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
            signed.date, signed.timestamp
        ));
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(WireError::new(400, "InvalidSignatureException", msg))
    }
}

/// Verifies the request's signature against `keys` (which must not be empty), for Kinesis and
/// the system clock: [`verify_with`] with [`SERVICE`] and `SystemTime::now()`. `query` is the
/// raw query string, `path` the raw URI path.
pub fn verify(
    keys: &KeyStore,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WireError> {
    let checks = Checks {
        service: SERVICE,
        now: SystemTime::now(),
    };
    verify_with(keys, method, path, query, headers, body, checks)
}

/// [`verify`] against a given service name and clock.
pub fn verify_with(
    keys: &KeyStore,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    checks: Checks<'_>,
) -> Result<(), WireError> {
    let pairs = query_pairs(query);
    let presigned = pairs.iter().any(|(k, _)| k == "X-Amz-Algorithm");
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
    let expires = if signed.presigned {
        presign_expires(&pairs)?
    } else {
        None
    };
    check_time(&signed, expires, checks.now)?;
    check_scope(&signed, checks.service)?;
    let secret = keys
        .secret(&signed.access_key_id)
        .ok_or_else(unrecognized_client)?;
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
    use std::time::Duration;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// The clock of most tests, and the signing time of their requests.
    const NOW: &str = "20260101T120000Z";
    const SCOPE: &str = "20260101/us-east-1/kinesis/aws4_request";

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

    /// The clock reading `YYYYMMDD'T'HHMMSS'Z'`.
    fn at(t: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_amz_date(t).unwrap() as u64)
    }

    /// [`verify_with`] for Kinesis with the clock at `now`.
    fn check_at(
        now: &str,
        keys: &KeyStore,
        method: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), WireError> {
        let checks = Checks {
            service: SERVICE,
            now: at(now),
        };
        verify_with(keys, method, "/", query, headers, body, checks)
    }

    /// [`check_at`] at [`NOW`].
    fn check(
        keys: &KeyStore,
        method: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), WireError> {
        check_at(NOW, keys, method, query, headers, body)
    }

    fn type_of(r: Result<(), WireError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => e.type_name,
        }
    }

    /// The InvalidSignatureException (HTTP 400) with `message`.
    fn invalid(message: &str) -> Result<(), WireError> {
        Err(WireError::new(400, "InvalidSignatureException", message))
    }

    fn incomplete_with(message: &str) -> Result<(), WireError> {
        Err(incomplete(message))
    }

    /// The "get-vanilla" case of AWS's SigV4 test suite (service `service`, 2015-08-30).
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
        let vanilla = |service, now| {
            verify_with(
                &keys(),
                "GET",
                "/",
                "",
                &h,
                b"",
                Checks {
                    service,
                    now: at(now),
                },
            )
        };
        // At its own time and for its own service it verifies.
        assert_eq!(vanilla("service", "20150830T123600Z"), Ok(()));
        // Kinesis wants its own service.
        assert_eq!(
            vanilla(SERVICE, "20150830T123600Z"),
            invalid("Credential should be scoped to correct service: 'kinesis'. ")
        );
        // Eleven years on it has long expired, and that is checked first.
        assert_eq!(
            vanilla("service", NOW),
            invalid("Signature expired: 20150830T123600Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)")
        );
        let e = verify(&keys(), "GET", "/", "", &h, b"").unwrap_err();
        assert_eq!(e.type_name, "InvalidSignatureException");
        assert!(
            e.message
                .starts_with("Signature expired: 20150830T123600Z is now earlier than "),
            "{}",
            e.message
        );
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

    #[test]
    fn timestamps() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20130524T001000Z"), Some(1_369_354_200));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date(NOW), Some(1_767_268_800));
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        for bad in [
            "20010229T000000Z",
            "21000229T000000Z",
            "20261301T000000Z",
            "20260100T000000Z",
            "20260431T000000Z",
            "20260101T240000Z",
            "20260101T006000Z",
            "20260101T000060Z",
            "20260101T000000",
            "20260101 000000Z",
            "2026010T1000000Z",
            "+0260101T000000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        // Formatting inverts parsing, across leap days and centuries, from year 0 to 9999.
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_from_civil(10_000, 1, 1), 2_932_897);
        for day in (-719_528..2_932_897).step_by(997) {
            for secs in [0, 1, 3_599, 86_399] {
                let t = day * 86_400 + secs;
                assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{t}");
            }
        }
        assert_eq!(format_amz_date(1_369_354_200), "20130524T001000Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:10:00 GMT"),
            Some(1_369_354_200)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for bad in [
            "Fri, 24 May 2013 00:10:00 UTC",
            "Fri 24 May 2013 00:10:00 GMT",
            "Fri, 24 Mai 2013 00:10:00 GMT",
            "Fri, 24 May 2013 0:10:00 GMT",
            "Fri, 31 Apr 2013 00:10:00 GMT",
            "Friday, 24-May-13 00:10:00 GMT",
            "20130524T001000Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
        assert_eq!(window(300), "5 min");
        assert_eq!(window(604_800), "10080 min");
        assert_eq!(window(90), "90 sec");
        assert_eq!(epoch_secs(UNIX_EPOCH + Duration::from_millis(1_999)), 1);
        assert_eq!(epoch_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }

    /// A signed Kinesis-like POST with the given body, as an SDK sends it: signed at the time of
    /// `time` (an `x-amz-date` or a `date` header, which it carries) with credential scope
    /// `scope` (`DATE/REGION/SERVICE/TERMINATOR`).
    fn signed_post_with(
        body: &[u8],
        with_content_sha: bool,
        time: (&'static str, &str),
        scope: &str,
    ) -> HeaderMap {
        let mut h = headers(&[
            ("host", "127.0.0.1:4567"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
            time,
        ]);
        let timestamp = match time {
            ("date", v) => format_amz_date(parse_http_date(v).unwrap()),
            (_, v) => v.to_string(),
        };
        let mut names = vec!["content-type", "host", time.0, "x-amz-target"];
        if with_content_sha {
            h.insert(
                "x-amz-content-sha256",
                HeaderValue::from_str(&sha256_hex(body)).unwrap(),
            );
            names.push("x-amz-content-sha256");
        }
        names.sort();
        let parts: Vec<&str> = scope.split('/').collect();
        let signed = Signed {
            access_key_id: AKID.into(),
            scope: scope.into(),
            date: parts[0].into(),
            region: parts[1].into(),
            service: parts[2].into(),
            signed_headers: names.iter().map(|s| s.to_string()).collect(),
            signature: String::new(),
            timestamp,
            presigned: false,
        };
        let creq = canonical_request("POST", "/", "", &h, &signed, &sha256_hex(body)).unwrap();
        let sig = sign(SECRET, &signed, &string_to_sign(&signed, &creq));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        h
    }

    /// [`signed_post_with`] at [`NOW`], scoped as Kinesis requests are.
    fn signed_post(body: &[u8], with_content_sha: bool) -> HeaderMap {
        signed_post_with(body, with_content_sha, ("x-amz-date", NOW), SCOPE)
    }

    /// A POST signed at `timestamp` (and scoped to its day).
    fn signed_at(timestamp: &str) -> HeaderMap {
        let scope = format!("{}/us-east-1/kinesis/aws4_request", &timestamp[..8]);
        signed_post_with(b"{}", false, ("x-amz-date", timestamp), &scope)
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
            assert_eq!(type_of(check(&keys(), "POST", "", &h, body)), "ok");
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
                    type_of(check(&keys(), "POST", "", &h2, body)),
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
                    let t = type_of(check(&keys(), "POST", "", &h2, body));
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
                    type_of(check(&keys(), "POST", "", &h, b2.as_bytes())),
                    "InvalidSignatureException",
                    "body char {i}"
                );
            }
            // A query string added after signing.
            assert_eq!(
                type_of(check(&keys(), "POST", "a=1", &h, body)),
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
            check(&other, "POST", "", &h, body),
            Err(unrecognized_client())
        );
        let wrong = KeyStore::new(&[AccessKey {
            access_key_id: AKID.into(),
            secret_access_key: "nope".into(),
        }]);
        assert_eq!(
            check(&wrong, "POST", "", &h, body),
            Err(invalid_signature())
        );
        assert_eq!(
            check(&keys(), "POST", "", &HeaderMap::new(), body),
            Err(missing_token())
        );
        let mut no_date = h.clone();
        no_date.remove("x-amz-date");
        let e = check(&keys(), "POST", "", &no_date, body).unwrap_err();
        assert_eq!(e.type_name, "IncompleteSignatureException");
        assert!(e.message.starts_with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 "), "{}", e.message);
        let mut bad_date = h.clone();
        bad_date.insert(
            "x-amz-date",
            HeaderValue::from_static("2026-01-01T12:00:00Z"),
        );
        assert_eq!(
            check(&keys(), "POST", "", &bad_date, body),
            incomplete_with("Date must be in ISO-8601 'basic format'. Got '2026-01-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")
        );
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "Basic abc",
        ] {
            let mut h2 = h.clone();
            h2.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(
                type_of(check(&keys(), "POST", "", &h2, body)),
                "IncompleteSignatureException",
                "{bad}"
            );
        }
        let mut four = h.clone();
        four.insert(header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis, SignedHeaders=host, Signature=00"));
        assert_eq!(
            check(&keys(), "POST", "", &four, body),
            incomplete_with("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20260101/us-east-1/kinesis'")
        );
        // A malformed scope date is a scope mismatch, as on AWS.
        let mut short = h.clone();
        short.insert(header::AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2026/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00"));
        assert_eq!(
            check(&keys(), "POST", "", &short, body),
            invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '2026' != '20260101', from '20260101T120000Z'.")
        );
    }

    #[test]
    fn clock_skew_of_header_signed_requests() {
        let k = keys();
        let post = |now: &str, h: &HeaderMap| check_at(now, &k, "POST", "", h, b"{}");
        // Exactly five minutes either way is still valid; a second more is not.
        assert_eq!(post(NOW, &signed_at("20260101T115500Z")), Ok(()));
        assert_eq!(
            post(NOW, &signed_at("20260101T115459Z")),
            invalid("Signature expired: 20260101T115459Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)")
        );
        assert_eq!(post(NOW, &signed_at("20260101T120500Z")), Ok(()));
        assert_eq!(
            post(NOW, &signed_at("20260101T120501Z")),
            invalid("Signature not yet current: 20260101T120501Z is still later than 20260101T120500Z (20260101T120000Z + 5 min.)")
        );
        // AWS's own examples of the two messages.
        assert_eq!(
            post("20130524T001000Z", &signed_at("20130524T000000Z")),
            invalid("Signature expired: 20130524T000000Z is now earlier than 20130524T000500Z (20130524T001000Z - 5 min.)")
        );
        assert_eq!(
            post("20130524T001000Z", &signed_at("20130524T002000Z")),
            invalid("Signature not yet current: 20130524T002000Z is still later than 20130524T001500Z (20130524T001000Z + 5 min.)")
        );
        // Across midnight: the scope's day is the signing time's, not the server's.
        assert_eq!(
            post("20260102T000100Z", &signed_at("20260101T235900Z")),
            Ok(())
        );
        // The clock is checked before the credential scope and the key, as AWS does.
        let expired = "Signature expired: 20260101T115000Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)";
        let h = signed_post_with(
            b"{}",
            false,
            ("x-amz-date", "20260101T115000Z"),
            "20260101/us-east-1/dynamodb/aws4_request",
        );
        assert_eq!(post(NOW, &h), invalid(expired));
        let nobody = KeyStore::new(&[AccessKey {
            access_key_id: "NOBODY".into(),
            secret_access_key: SECRET.into(),
        }]);
        assert_eq!(
            check(&nobody, "POST", "", &signed_at("20260101T115000Z"), b"{}"),
            invalid(expired)
        );
        // The `Date` header when there is no `X-Amz-Date`, held to the same window.
        let dated = signed_post_with(
            b"{}",
            true,
            ("date", "Thu, 01 Jan 2026 11:56:00 GMT"),
            SCOPE,
        );
        assert!(!dated.contains_key("x-amz-date"));
        assert_eq!(post(NOW, &dated), Ok(()));
        assert_eq!(post("20260101T120100Z", &dated), Ok(()));
        assert_eq!(
            post("20260101T120101Z", &dated),
            invalid("Signature expired: 20260101T115600Z is now earlier than 20260101T115601Z (20260101T120101Z - 5 min.)")
        );
        let mut bad = dated.clone();
        bad.insert(header::DATE, HeaderValue::from_static("yesterday"));
        assert_eq!(
            post(NOW, &bad),
            incomplete_with("Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601")
        );
        // `X-Amz-Date` wins over `Date`.
        let mut both = signed_at(NOW);
        both.insert(
            header::DATE,
            HeaderValue::from_static("Thu, 01 Jan 2015 00:00:00 GMT"),
        );
        assert_eq!(post(NOW, &both), Ok(()));
    }

    #[test]
    fn credential_scope() {
        let k = keys();
        let post = |scope: &str| {
            let h = signed_post_with(b"{}", false, ("x-amz-date", NOW), scope);
            check(&k, "POST", "", &h, b"{}")
        };
        assert_eq!(post(SCOPE), Ok(()));
        // Any region.
        for region in [
            "eu-west-3",
            "ap-southeast-2",
            "us-gov-east-1",
            "braid",
            "on-prem-1",
        ] {
            assert_eq!(
                post(&format!("20260101/{region}/kinesis/aws4_request")),
                Ok(()),
                "{region}"
            );
        }
        assert_eq!(
            post("20260102/us-east-1/kinesis/aws4_request"),
            invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260102' != '20260101', from '20260101T120000Z'.")
        );
        for service in ["dynamodb", "Kinesis", "kinesis-video", ""] {
            assert_eq!(
                post(&format!("20260101/us-east-1/{service}/aws4_request")),
                invalid("Credential should be scoped to correct service: 'kinesis'. "),
                "{service}"
            );
        }
        assert_eq!(
            post("20260101/us-east-1/kinesis/aws4_reques"),
            invalid("Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'. ")
        );
        // Every mismatch at once, in AWS's order.
        assert_eq!(
            post("20260102//s3/aws5_request"),
            invalid("Credential should be scoped to a valid region, not ''. Credential should be scoped to correct service: 'kinesis'. Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260102' != '20260101', from '20260101T120000Z'.")
        );
        // The scope is checked before the key.
        let nobody = KeyStore::new(&[AccessKey {
            access_key_id: "NOBODY".into(),
            secret_access_key: SECRET.into(),
        }]);
        let h = signed_post_with(
            b"{}",
            false,
            ("x-amz-date", NOW),
            "20260101/us-east-1/sqs/aws4_request",
        );
        assert_eq!(
            check(&nobody, "POST", "", &h, b"{}"),
            invalid("Credential should be scoped to correct service: 'kinesis'. ")
        );
        // Trailing slashes after the terminator are ignored.
        let mut h = signed_post(b"{}", false);
        let auth = h[header::AUTHORIZATION].to_str().unwrap();
        let auth = auth.replace("aws4_request,", "aws4_request//,");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        assert_eq!(check(&k, "POST", "", &h, b"{}"), Ok(()));
    }

    /// A presigned GET signed at `date` with credential scope day `scope_date`, with
    /// `X-Amz-Expires=expires` when given: its query string.
    fn presign_scoped(scope_date: &str, date: &str, expires: Option<&str>) -> String {
        let h = headers(&[("host", "127.0.0.1:4567")]);
        let mut base = format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AKID}%2F{scope_date}%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date={date}");
        if let Some(e) = expires {
            base.push_str(&format!("&X-Amz-Expires={e}"));
        }
        base.push_str("&X-Amz-SignedHeaders=host");
        let signed = Signed {
            access_key_id: AKID.into(),
            scope: format!("{scope_date}/us-east-1/kinesis/aws4_request"),
            date: scope_date.into(),
            region: "us-east-1".into(),
            service: "kinesis".into(),
            signed_headers: vec!["host".into()],
            signature: String::new(),
            timestamp: date.into(),
            presigned: true,
        };
        let creq = canonical_request("GET", "/", &base, &h, &signed, UNSIGNED_PAYLOAD).unwrap();
        let sig = sign(SECRET, &signed, &string_to_sign(&signed, &creq));
        format!("{base}&X-Amz-Signature={sig}")
    }

    fn presign(date: &str, expires: Option<&str>) -> String {
        presign_scoped(&date[..8], date, expires)
    }

    /// Verifies a presigned GET with the clock at `now`.
    fn get_at(now: &str, query: &str) -> Result<(), WireError> {
        let h = headers(&[("host", "127.0.0.1:4567")]);
        check_at(now, &keys(), "GET", query, &h, b"")
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
        assert_eq!(q, presign(NOW, Some("300")));
        assert!(check(&keys(), "GET", &q, &h, b"").is_ok());
        let q_bad = format!("{base}&X-Amz-Signature={}", mutate(&sig, 0));
        assert_eq!(
            type_of(check(&keys(), "GET", &q_bad, &h, b"")),
            "InvalidSignatureException"
        );
        assert_eq!(
            type_of(check(
                &keys(),
                "GET",
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                &h,
                b""
            )),
            "IncompleteSignatureException"
        );
    }

    #[test]
    fn presigned_expiry() {
        // Valid until X-Amz-Date + X-Amz-Expires, inclusive.
        let q = presign(NOW, Some("300"));
        assert_eq!(get_at(NOW, &q), Ok(()));
        assert_eq!(get_at("20260101T120500Z", &q), Ok(()));
        assert_eq!(
            get_at("20260101T120501Z", &q),
            invalid("Signature expired: 20260101T120000Z is now earlier than 20260101T120001Z (20260101T120501Z - 5 min.)")
        );
        // The longest, seven days.
        let q = presign(NOW, Some("604800"));
        assert_eq!(get_at("20260108T120000Z", &q), Ok(()));
        assert_eq!(
            get_at("20260108T120001Z", &q),
            invalid("Signature expired: 20260101T120000Z is now earlier than 20260101T120001Z (20260108T120001Z - 10080 min.)")
        );
        // The shortest, one second; and a window that is not whole minutes.
        let q = presign(NOW, Some("1"));
        assert_eq!(get_at("20260101T120001Z", &q), Ok(()));
        assert_eq!(
            type_of(get_at("20260101T120002Z", &q)),
            "InvalidSignatureException"
        );
        let q = presign(NOW, Some("90"));
        assert_eq!(get_at("20260101T120130Z", &q), Ok(()));
        assert_eq!(
            get_at("20260101T120131Z", &q),
            invalid("Signature expired: 20260101T120000Z is now earlier than 20260101T120001Z (20260101T120131Z - 90 sec.)")
        );
        // Not valid yet: dated more than five minutes ahead, whatever its expiry.
        assert_eq!(
            get_at(NOW, &presign("20260101T120500Z", Some("3600"))),
            Ok(())
        );
        assert_eq!(
            get_at(NOW, &presign("20260101T120501Z", Some("3600"))),
            invalid("Signature not yet current: 20260101T120501Z is still later than 20260101T120500Z (20260101T120000Z + 5 min.)")
        );
        // Without X-Amz-Expires: the header form's window.
        assert_eq!(get_at(NOW, &presign("20260101T115500Z", None)), Ok(()));
        assert_eq!(
            get_at(NOW, &presign("20260101T115459Z", None)),
            invalid("Signature expired: 20260101T115459Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)")
        );
        assert_eq!(
            type_of(get_at(NOW, &presign("20260101T120501Z", None))),
            "InvalidSignatureException"
        );
        // The scope's day must be X-Amz-Date's.
        assert_eq!(
            get_at(NOW, &presign_scoped("20251231", NOW, Some("300"))),
            invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20251231' != '20260101', from '20260101T120000Z'.")
        );
        // X-Amz-Expires out of 1..=604800, or not a number.
        let week = "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds";
        for (expires, message) in [
            ("604801", week),
            ("99999999999999999999", week),
            ("0", "X-Amz-Expires must be at least 1 (in seconds)"),
            ("-1", "X-Amz-Expires must be non-negative"),
            (
                "-99999999999999999999",
                "X-Amz-Expires must be non-negative",
            ),
            ("", "X-Amz-Expires should be a number"),
            ("1.5", "X-Amz-Expires should be a number"),
            ("300s", "X-Amz-Expires should be a number"),
        ] {
            let q = presign(NOW, Some(expires));
            assert_eq!(get_at(NOW, &q), incomplete_with(message), "{expires}");
            assert_eq!(parse_presigned(&q), Err(incomplete(message)), "{expires}");
        }
    }
}
