//! One document tree for both wire formats, and the two codecs.
//!
//! - AWS JSON 1.1 (`application/x-amz-json-1.1`): blobs are base64 strings, timestamps are
//!   epoch seconds as (fractional) numbers.
//! - CBOR (`application/x-amz-cbor-1.1`, what the Java SDKs send): blobs are byte strings,
//!   timestamps are tag 1 wrapping *integer epoch milliseconds* (the Java SDK's convention,
//!   which breaks RFC 8949's seconds); we answer the same way.
//!
//! Requests are decoded into [`Value`] without knowing the operation; the operation's schema
//! (`schema.rs`) then checks types and converts blobs and timestamps, which is the only place
//! where the two formats differ in meaning.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The wire format of a request, and so of its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
}

impl Format {
    pub const JSON_CONTENT_TYPE: &'static str = "application/x-amz-json-1.1";
    pub const CBOR_CONTENT_TYPE: &'static str = "application/x-amz-cbor-1.1";

    /// The format of a request's `Content-Type`. Anything that is not CBOR is read as JSON
    /// (AWS JSON 1.0/1.1, `application/json`, or none at all, as curl users send).
    pub fn from_content_type(ct: Option<&str>) -> Format {
        let essence = ct
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == Self::CBOR_CONTENT_TYPE || essence == "application/cbor" {
            Format::Cbor
        } else {
            Format::Json
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => Self::JSON_CONTENT_TYPE,
            Format::Cbor => Self::CBOR_CONTENT_TYPE,
        }
    }
}

/// A decoded request or a response to encode.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A blob. In requests only CBOR produces it (JSON blobs arrive as base64 strings).
    Bytes(Vec<u8>),
    /// Epoch milliseconds. In requests only a CBOR tag 1 produces it.
    Timestamp(i64),
    List(Vec<Value>),
    /// Members in order; keys are unique after decoding (the last one wins, as in JSON).
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of a map (None for other values, absent keys and nulls).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Value::Null)),
            _ => None,
        }
    }

    /// A map from `(key, value)` pairs (a response builder).
    pub fn map<I, K>(members: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Bytes(_) => "blob",
            Value::Timestamp(_) => "timestamp",
            Value::List(_) => "list",
            Value::Map(_) => "structure",
        }
    }
}

/// Why a body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Decodes a request body. The top level must be a map.
pub fn decode(format: Format, body: &[u8]) -> Result<Value, DecodeError> {
    let v = match format {
        Format::Json => from_json(
            serde_json::from_slice::<serde_json::Value>(body)
                .map_err(|e| DecodeError(format!("Malformed JSON request body: {e}")))?,
        ),
        Format::Cbor => from_cbor(
            ciborium::de::from_reader::<ciborium::Value, _>(body)
                .map_err(|e| DecodeError(format!("Malformed CBOR request body: {e}")))?,
        )?,
    };
    match v {
        Value::Map(_) => Ok(v),
        Value::List(_) => Err(DecodeError("Start of list found where not expected".into())),
        other => Err(DecodeError(format!(
            "Expected a structure at the top level, found a {}",
            other.kind()
        ))),
    }
}

fn from_json(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i as i128)
            } else if let Some(u) = n.as_u64() {
                Value::Int(u as i128)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::Str(s),
        J::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
        J::Object(o) => Value::Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn from_cbor(v: ciborium::Value) -> Result<Value, DecodeError> {
    use ciborium::Value as C;
    Ok(match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => Value::Int(i128::from(i)),
        C::Float(f) => Value::Float(f),
        C::Text(s) => Value::Str(s),
        C::Bytes(b) => Value::Bytes(b),
        // Tag 1: an epoch time. The Java SDK sends integer *milliseconds*; a float is read
        // as RFC 8949 seconds.
        C::Tag(1, inner) => match *inner {
            C::Integer(i) => Value::Timestamp(
                i64::try_from(i128::from(i))
                    .map_err(|_| DecodeError("Timestamp out of range".into()))?,
            ),
            C::Float(f) if f.is_finite() && f.abs() < 1e15 => {
                Value::Timestamp((f * 1000.0).round() as i64)
            }
            _ => return Err(DecodeError("Tag 1 must wrap a number".into())),
        },
        C::Tag(_, inner) => from_cbor(*inner)?,
        C::Array(a) => Value::List(a.into_iter().map(from_cbor).collect::<Result<_, _>>()?),
        C::Map(m) => {
            let mut out: Vec<(String, Value)> = Vec::with_capacity(m.len());
            for (k, v) in m {
                let C::Text(k) = k else {
                    return Err(DecodeError("CBOR map keys must be text strings".into()));
                };
                let v = from_cbor(v)?;
                out.retain(|(x, _)| *x != k);
                out.push((k, v));
            }
            Value::Map(out)
        }
        _ => return Err(DecodeError("Unsupported CBOR value".into())),
    })
}

/// Encodes a response (or error) body.
pub fn encode(format: Format, v: &Value) -> Vec<u8> {
    match format {
        Format::Json => serde_json::to_vec(&to_json(v)).unwrap_or_else(|_| b"{}".to_vec()),
        Format::Cbor => {
            let mut out = Vec::new();
            // Writing to a Vec cannot fail.
            let _ = ciborium::ser::into_writer(&to_cbor(v), &mut out);
            out
        }
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => J::from(i),
            Err(_) => J::from(*i as f64),
        },
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Value::Str(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(STANDARD.encode(b)),
        Value::Timestamp(ms) => epoch_seconds(*ms),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// Epoch milliseconds as JSON epoch seconds: an integer when whole, else with the millis as
/// the fraction (`1602553946.447`).
pub fn epoch_seconds(ms: i64) -> serde_json::Value {
    if ms % 1000 == 0 {
        serde_json::Value::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

fn to_cbor(v: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => C::Integer(i.into()),
            Err(_) => C::Float(*i as f64),
        },
        Value::Float(f) => C::Float(*f),
        Value::Str(s) => C::Text(s.clone()),
        Value::Bytes(b) => C::Bytes(b.clone()),
        Value::Timestamp(ms) => C::Tag(1, Box::new(C::Integer((*ms).into()))),
        Value::List(l) => C::Array(l.iter().map(to_cbor).collect()),
        Value::Map(m) => C::Map(
            m.iter()
                .map(|(k, v)| (C::Text(k.clone()), to_cbor(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &ciborium::Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn content_types() {
        assert_eq!(Format::from_content_type(None), Format::Json);
        assert_eq!(
            Format::from_content_type(Some("application/x-amz-json-1.1")),
            Format::Json
        );
        assert_eq!(
            Format::from_content_type(Some("application/x-amz-cbor-1.1; charset=x")),
            Format::Cbor
        );
        assert_eq!(
            Format::from_content_type(Some("Application/X-Amz-Cbor-1.1")),
            Format::Cbor
        );
        assert_eq!(Format::from_content_type(Some("text/plain")), Format::Json);
    }

    #[test]
    fn json_round_trip_and_shapes() {
        let v = decode(
            Format::Json,
            br#"{"StreamName":"s","Limit":5,"F":1.5,"B":true,"L":[1,"x"],"N":null,"Big":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(v.get("StreamName"), Some(&Value::str("s")));
        assert_eq!(v.get("Limit"), Some(&Value::Int(5)));
        assert_eq!(v.get("F"), Some(&Value::Float(1.5)));
        assert_eq!(v.get("N"), None);
        assert_eq!(v.get("Big"), Some(&Value::Int(u64::MAX as i128)));
        assert!(decode(Format::Json, b"[1]").is_err());
        assert!(decode(Format::Json, b"7").is_err());
        assert!(decode(Format::Json, b"{").is_err());
        assert!(decode(Format::Json, b"").is_err());

        let out = Value::map([
            ("Data", Value::Bytes(vec![0, 255, 7])),
            ("T", Value::Timestamp(1_602_553_946_447)),
            ("W", Value::Timestamp(1_602_553_946_000)),
        ]);
        let text = String::from_utf8(encode(Format::Json, &out)).unwrap();
        assert_eq!(text, r#"{"Data":"AP8H","T":1602553946.447,"W":1602553946}"#);
    }

    #[test]
    fn cbor_decodes_java_sdk_shapes() {
        use ciborium::Value as C;
        let body = cbor(&C::Map(vec![
            (C::Text("Data".into()), C::Bytes(vec![1, 2, 3])),
            (
                C::Text("Timestamp".into()),
                C::Tag(1, Box::new(C::Integer(1_602_553_946_447i64.into()))),
            ),
            (
                C::Text("Secs".into()),
                C::Tag(1, Box::new(C::Float(1_602_553_946.5))),
            ),
            (C::Text("Limit".into()), C::Integer(3.into())),
            (
                C::Text("Other".into()),
                C::Tag(55799, Box::new(C::Bool(true))),
            ),
        ]));
        let v = decode(Format::Cbor, &body).unwrap();
        assert_eq!(v.get("Data"), Some(&Value::Bytes(vec![1, 2, 3])));
        assert_eq!(
            v.get("Timestamp"),
            Some(&Value::Timestamp(1_602_553_946_447))
        );
        assert_eq!(v.get("Secs"), Some(&Value::Timestamp(1_602_553_946_500)));
        assert_eq!(v.get("Limit"), Some(&Value::Int(3)));
        assert_eq!(v.get("Other"), Some(&Value::Bool(true)));

        // Non-text keys, bad tag-1 contents, truncation and non-maps are refused.
        let bad_key = cbor(&C::Map(vec![(C::Integer(1.into()), C::Null)]));
        assert!(decode(Format::Cbor, &bad_key).is_err());
        let bad_tag = cbor(&C::Map(vec![(
            C::Text("T".into()),
            C::Tag(1, Box::new(C::Text("x".into()))),
        )]));
        assert!(decode(Format::Cbor, &bad_tag).is_err());
        assert!(decode(Format::Cbor, &body[..body.len() - 1]).is_err());
        assert!(decode(Format::Cbor, &cbor(&C::Array(vec![]))).is_err());
    }

    #[test]
    fn cbor_encodes_blobs_and_tag1_millis() {
        use ciborium::Value as C;
        let out = Value::map([
            ("Data", Value::Bytes(vec![9])),
            ("T", Value::Timestamp(1_602_553_946_447)),
            ("N", Value::Int(-3)),
        ]);
        let back: C = ciborium::de::from_reader(&encode(Format::Cbor, &out)[..]).unwrap();
        assert_eq!(
            back,
            C::Map(vec![
                (C::Text("Data".into()), C::Bytes(vec![9])),
                (
                    C::Text("T".into()),
                    C::Tag(1, Box::new(C::Integer(1_602_553_946_447i64.into())))
                ),
                (C::Text("N".into()), C::Integer((-3).into())),
            ])
        );
    }
}
