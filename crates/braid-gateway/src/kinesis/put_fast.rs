//! The fast path of PutRecords and PutRecord, the hot operations: a plainly valid body goes
//! straight into the backend's request, and the PutRecords answer is written straight into
//! bytes, without the generic document trees (`serde_json::Value` → [`Value`] → `Typed` →
//! request, and two trees for the answer).
//!
//! The fast path only ever *accepts* a body: whenever anything is unusual (a number, a `null`,
//! an escape in a JSON string, an unknown or repeated member, a failed constraint, `DryRun`
//! set, ...) [`parse`] answers `None` and the request takes the generic path, which produces
//! the exact error (or result) as before. What it accepts, the generic path would accept too,
//! with the same request (the unit tests compare both).

use base64::Engine;
use braid_proto::v1;

use super::backend::Backend;
use super::error::WireError;
use super::ops::put_record_output;
use super::schema::{str_valid, Ty, BASE64};
use super::shapes::{
    DATA, HASH_KEY, PARTITION_KEY, PUT_RECORDS_ENTRIES, SEQUENCE_NUMBER, STREAM_ARN, STREAM_ID,
    STREAM_NAME,
};
use super::value::{decode, encode, Format, Value};

/// A checked PutRecords or PutRecord request.
#[derive(Debug, PartialEq)]
pub(crate) enum Fast {
    Records(v1::PutRecordsRequest),
    Record(v1::PutRecordRequest),
}

/// The request of a valid PutRecords / PutRecord body, or `None`: take the generic path.
pub(crate) fn parse(op: &str, format: Format, body: &[u8]) -> Option<Fast> {
    let records = match op {
        "PutRecords" => true,
        "PutRecord" => false,
        _ => return None,
    };
    let top = match format {
        Format::Json => json_top(body)?,
        Format::Cbor => value_top(decode(Format::Cbor, body).ok()?)?,
    };
    if records {
        top.into_put_records()
    } else {
        top.into_put_record()
    }
}

/// Runs a checked request; the answer is the response body.
pub(crate) async fn run<B: Backend>(
    b: &B,
    format: Format,
    req: Fast,
) -> Result<Vec<u8>, WireError> {
    Ok(match req {
        Fast::Records(r) => put_records_answer(format, &b.put_records(r).await?),
        Fast::Record(r) => encode(format, &put_record_output(b.put_record(r).await?)),
    })
}

/// The members of both operations' inputs, as found (unchecked).
#[derive(Default)]
struct Top {
    records: Option<Vec<Entry>>,
    stream_name: Option<String>,
    stream_arn: Option<String>,
    stream_id: Option<String>,
    dry_run: Option<bool>,
    data: Option<Vec<u8>>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    sequence_number_for_ordering: Option<String>,
}

#[derive(Default)]
struct Entry {
    data: Option<Vec<u8>>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

fn opt_valid(s: &Option<String>, ty: &Ty) -> bool {
    s.as_deref().is_none_or(|s| str_valid(s, ty))
}

fn data_valid(d: &[u8]) -> bool {
    matches!(&DATA, Ty::Blob { max } if d.len() <= *max)
}

impl Top {
    /// The members both operations share, checked; `DryRun` takes the generic path.
    fn stream_valid(&self) -> bool {
        self.dry_run != Some(true)
            && opt_valid(&self.stream_name, &STREAM_NAME)
            && opt_valid(&self.stream_arn, &STREAM_ARN)
            && opt_valid(&self.stream_id, &STREAM_ID)
    }

    fn into_put_records(self) -> Option<Fast> {
        let (Ty::List { min, max, .. }, Some(records)) =
            (&PUT_RECORDS_ENTRIES, self.records.as_ref())
        else {
            return None;
        };
        if !self.stream_valid()
            || self.data.is_some()
            || self.partition_key.is_some()
            || self.explicit_hash_key.is_some()
            || self.sequence_number_for_ordering.is_some()
            || min.is_some_and(|min| records.len() < min)
            || max.is_some_and(|max| records.len() > max)
        {
            return None;
        }
        let mut out = Vec::with_capacity(records.len());
        for e in self.records? {
            let (Some(data), Some(partition_key)) = (e.data, e.partition_key) else {
                return None;
            };
            if !data_valid(&data)
                || !str_valid(&partition_key, &PARTITION_KEY)
                || !opt_valid(&e.explicit_hash_key, &HASH_KEY)
            {
                return None;
            }
            out.push(v1::PutRecordsRequestEntry {
                data: data.into(),
                partition_key,
                explicit_hash_key: e.explicit_hash_key.unwrap_or_default(),
            });
        }
        Some(Fast::Records(v1::PutRecordsRequest {
            stream_name: self.stream_name.unwrap_or_default(),
            stream_arn: self.stream_arn.unwrap_or_default(),
            records: out,
        }))
    }

    fn into_put_record(self) -> Option<Fast> {
        if !self.stream_valid()
            || self.records.is_some()
            || !opt_valid(&self.explicit_hash_key, &HASH_KEY)
            || !opt_valid(&self.sequence_number_for_ordering, &SEQUENCE_NUMBER)
        {
            return None;
        }
        let (Some(data), Some(partition_key)) = (self.data, self.partition_key) else {
            return None;
        };
        if !data_valid(&data) || !str_valid(&partition_key, &PARTITION_KEY) {
            return None;
        }
        Some(Fast::Record(v1::PutRecordRequest {
            stream_name: self.stream_name.unwrap_or_default(),
            stream_arn: self.stream_arn.unwrap_or_default(),
            data: data.into(),
            partition_key,
            explicit_hash_key: self.explicit_hash_key.unwrap_or_default(),
            sequence_number_for_ordering: self.sequence_number_for_ordering.unwrap_or_default(),
        }))
    }
}

/// Sets a member once: a repeated member (or a value of the wrong kind) takes the generic path.
fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v?);
    Some(())
}

// ---- JSON: a scanner for the plain subset SDKs send ----

/// A JSON reader that accepts only objects, arrays, strings without escapes or control
/// characters, `true` and `false`; anything else ends the fast path.
struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Json<'a> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string's raw bytes (between the quotes).
    fn raw(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        let end = string_end(self.b, start)?;
        self.i = end + 1;
        Some(&self.b[start..end])
    }

    fn text(&mut self) -> Option<String> {
        std::str::from_utf8(self.raw()?).ok().map(str::to_string)
    }

    fn blob(&mut self) -> Option<Vec<u8>> {
        BASE64.decode(self.raw()?).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        self.peek()?;
        let rest = &self.b[self.i..];
        if rest.starts_with(b"true") {
            self.i += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.i += 5;
            Some(false)
        } else {
            None
        }
    }

    /// An object: `member` reads the value of each key.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.raw()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `item` reads each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn entry(&mut self) -> Option<Entry> {
        let mut e = Entry::default();
        self.object(|j, key| match key {
            b"Data" => once(&mut e.data, j.blob()),
            b"PartitionKey" => once(&mut e.partition_key, j.text()),
            b"ExplicitHashKey" => once(&mut e.explicit_hash_key, j.text()),
            _ => None,
        })?;
        Some(e)
    }
}

/// The index of the quote closing a string that starts at `i`, or `None` at an escape, a
/// control character or the end of the input. Eight bytes at a time.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    loop {
        if let Some(w) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(w.try_into().ok()?);
            let special = has_zero(w ^ (ONES * b'"' as u64))
                | has_zero(w ^ (ONES * b'\\' as u64))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
            if special == 0 {
                i += 8;
                continue;
            }
        }
        // A candidate (or the tail): byte by byte.
        let end = (i + 8).min(b.len());
        if i >= end {
            return None;
        }
        while i < end {
            match b[i] {
                b'"' => return Some(i),
                b'\\' | 0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }
}

fn json_top(body: &[u8]) -> Option<Top> {
    let mut j = Json { b: body, i: 0 };
    let mut top = Top::default();
    j.object(|j, key| match key {
        b"Records" => {
            let mut records = Vec::new();
            j.array(|j| {
                records.push(j.entry()?);
                Some(())
            })?;
            once(&mut top.records, Some(records))
        }
        b"StreamName" => once(&mut top.stream_name, j.text()),
        b"StreamARN" => once(&mut top.stream_arn, j.text()),
        b"StreamId" => once(&mut top.stream_id, j.text()),
        b"DryRun" => once(&mut top.dry_run, j.bool()),
        b"Data" => once(&mut top.data, j.blob()),
        b"PartitionKey" => once(&mut top.partition_key, j.text()),
        b"ExplicitHashKey" => once(&mut top.explicit_hash_key, j.text()),
        b"SequenceNumberForOrdering" => once(&mut top.sequence_number_for_ordering, j.text()),
        _ => None,
    })?;
    // Only whitespace may follow.
    (j.peek().is_none()).then_some(top)
}

// ---- CBOR: from the decoded tree, moving its strings and blobs ----

fn text(v: Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn blob(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::Str(s) => BASE64.decode(s.as_bytes()).ok(),
        _ => None,
    }
}

fn members(v: Value) -> Option<Vec<(String, Value)>> {
    match v {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn value_entry(v: Value) -> Option<Entry> {
    let mut e = Entry::default();
    for (k, v) in members(v)? {
        match k.as_str() {
            "Data" => once(&mut e.data, blob(v)),
            "PartitionKey" => once(&mut e.partition_key, text(v)),
            "ExplicitHashKey" => once(&mut e.explicit_hash_key, text(v)),
            _ => None,
        }?;
    }
    Some(e)
}

fn value_top(v: Value) -> Option<Top> {
    let mut top = Top::default();
    for (k, v) in members(v)? {
        match k.as_str() {
            "Records" => {
                let Value::List(items) = v else {
                    return None;
                };
                let records = items.into_iter().map(value_entry).collect();
                once(&mut top.records, records)
            }
            "StreamName" => once(&mut top.stream_name, text(v)),
            "StreamARN" => once(&mut top.stream_arn, text(v)),
            "StreamId" => once(&mut top.stream_id, text(v)),
            "DryRun" => once(
                &mut top.dry_run,
                match v {
                    Value::Bool(b) => Some(b),
                    _ => None,
                },
            ),
            "Data" => once(&mut top.data, blob(v)),
            "PartitionKey" => once(&mut top.partition_key, text(v)),
            "ExplicitHashKey" => once(&mut top.explicit_hash_key, text(v)),
            "SequenceNumberForOrdering" => once(&mut top.sequence_number_for_ordering, text(v)),
            _ => None,
        }?;
    }
    Some(top)
}

// ---- The PutRecords answer, written directly ----

/// The PutRecords answer, byte for byte what `encode(format, &put_records_output(r))` gives:
/// JSON members in serde_json's (sorted) order, CBOR members in the output shape's order,
/// definite lengths with the shortest heads, as ciborium writes them.
pub(crate) fn put_records_answer(format: Format, r: &v1::PutRecordsResponse) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut out = Vec::with_capacity(64 + r.records.len() * 112);
            out.extend_from_slice(b"{\"EncryptionType\":\"NONE\",\"FailedRecordCount\":");
            out.extend_from_slice(r.failed_record_count.to_string().as_bytes());
            out.extend_from_slice(b",\"Records\":[");
            for (n, e) in r.records.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                let (k1, v1, k2, v2) = if e.error_code.is_empty() {
                    ("SequenceNumber", &e.sequence_number, "ShardId", &e.shard_id)
                } else {
                    ("ErrorCode", &e.error_code, "ErrorMessage", &e.error_message)
                };
                out.extend_from_slice(b"{\"");
                out.extend_from_slice(k1.as_bytes());
                out.extend_from_slice(b"\":");
                json_str(&mut out, v1);
                out.extend_from_slice(b",\"");
                out.extend_from_slice(k2.as_bytes());
                out.extend_from_slice(b"\":");
                json_str(&mut out, v2);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
            out
        }
        Format::Cbor => {
            let mut out = Vec::with_capacity(64 + r.records.len() * 96);
            cbor_head(&mut out, 5, 3);
            cbor_text(&mut out, "FailedRecordCount");
            cbor_head(&mut out, 0, r.failed_record_count.into());
            cbor_text(&mut out, "Records");
            cbor_head(&mut out, 4, r.records.len() as u64);
            for e in &r.records {
                cbor_head(&mut out, 5, 2);
                if e.error_code.is_empty() {
                    cbor_text(&mut out, "SequenceNumber");
                    cbor_text(&mut out, &e.sequence_number);
                    cbor_text(&mut out, "ShardId");
                    cbor_text(&mut out, &e.shard_id);
                } else {
                    cbor_text(&mut out, "ErrorCode");
                    cbor_text(&mut out, &e.error_code);
                    cbor_text(&mut out, "ErrorMessage");
                    cbor_text(&mut out, &e.error_message);
                }
            }
            cbor_text(&mut out, "EncryptionType");
            cbor_text(&mut out, "NONE");
            out
        }
    }
}

/// A JSON string as serde_json writes it (the same escaping).
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|c| c >= 0x20 && c != b'"' && c != b'\\' && c < 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A CBOR head: major type and argument, in the shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::ops::{put_record_request, put_records_output, put_records_request};
    use crate::kinesis::schema::check;
    use crate::kinesis::shapes::{PUT_RECORD, PUT_RECORDS};
    use base64::engine::general_purpose::STANDARD;

    /// What the generic path makes of a body: the backend request or the error.
    fn generic(op: &str, format: Format, body: &[u8]) -> Result<Fast, WireError> {
        let v = decode(format, body).map_err(|e| WireError::serialization(e.0))?;
        Ok(match op {
            "PutRecords" => {
                Fast::Records(put_records_request(&mut check(format, &v, PUT_RECORDS)?))
            }
            _ => Fast::Record(put_record_request(&mut check(format, &v, PUT_RECORD)?)),
        })
    }

    /// The fast path accepts only what the generic path accepts, with the same request.
    fn agree(op: &str, format: Format, body: &[u8]) -> bool {
        let fast = parse(op, format, body);
        if let Some(f) = &fast {
            assert_eq!(
                generic(op, format, body).as_ref(),
                Ok(f),
                "{op} {}",
                String::from_utf8_lossy(body)
            );
        }
        fast.is_some()
    }

    fn record(data: &[u8], key: &str) -> String {
        format!(
            r#"{{"Data":"{}","PartitionKey":"{key}"}}"#,
            STANDARD.encode(data)
        )
    }

    fn cbor(v: &ciborium::Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn json_bodies() {
        let many: Vec<String> = (0..500)
            .map(|i| record(&vec![i as u8; i], &format!("k{i}")))
            .collect();
        let accepted = [
            format!(r#"{{"Records":[{}],"StreamName":"s"}}"#, many.join(",")),
            format!(" {{ \"StreamName\" : \"s\" ,\n\"Records\":[ {} ]\t}}\r\n", record(b"x", "k")),
            r#"{"Records":[{"Data":"AAE","PartitionKey":"ü","ExplicitHashKey":"12"}],"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","DryRun":false}"#.to_string(),
            r#"{"Records":[{"PartitionKey":"k","Data":""}],"StreamId":"abcdefghij0123456789-abc"}"#.to_string(),
        ];
        for b in &accepted {
            assert!(agree("PutRecords", Format::Json, b.as_bytes()), "{b}");
        }
        let fallback = [
            format!(
                r#"{{"Records":[{}],"StreamName":"s"}}"#,
                [many.clone(), vec![record(b"x", "k")]].concat().join(",")
            ),
            r#"{"Records":[],"StreamName":"s"}"#.into(),
            r#"{"StreamName":"s"}"#.into(),
            r#"{"Records":null,"StreamName":"s"}"#.into(),
            r#"{"Records":[null],"StreamName":"s"}"#.into(),
            r#"{"Records":[{"Data":"AA\/","PartitionKey":"k"}]}"#.into(),
            r#"{"Records":[{"Data":"A","PartitionKey":"k"}]}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":""}]}"#.into(),
            format!(
                r#"{{"Records":[{{"Data":"AA==","PartitionKey":"{}"}}]}}"#,
                "k".repeat(257)
            ),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k","ExplicitHashKey":"01"}]}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k","Other":1}]}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k","PartitionKey":"j"}]}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],"StreamName":"a b"}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],"StreamName":5}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],"DryRun":true}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],"Extra":"x"}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],}"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}]} x"#.into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}]"#.into(),
            "{\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"a\u{1}b\"}]}".into(),
            r#"{"Records":[{"Data":"AA==","PartitionKey":"k"}],"Data":"AA=="}"#.into(),
            "".into(),
            "[]".into(),
        ];
        for b in &fallback {
            assert!(!agree("PutRecords", Format::Json, b.as_bytes()), "{b}");
        }
        // Invalid UTF-8 in a key.
        let mut bad = br#"{"Records":[{"Data":"AA==","PartitionKey":"k"#.to_vec();
        bad.extend_from_slice(&[0xff, b'"', b'}', b']', b'}']);
        assert!(!agree("PutRecords", Format::Json, &bad));

        let one = [
            r#"{"StreamName":"s","Data":"AAE=","PartitionKey":"k"}"#,
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","Data":"AAE","PartitionKey":"k","ExplicitHashKey":"0","SequenceNumberForOrdering":"123"}"#,
        ];
        for b in one {
            assert!(agree("PutRecord", Format::Json, b.as_bytes()), "{b}");
        }
        for b in [
            r#"{"StreamName":"s","Data":"AAE=","PartitionKey":"k","SequenceNumberForOrdering":"x"}"#,
            r#"{"StreamName":"s","Data":"AAE="}"#,
            r#"{"StreamName":"s","Records":[],"Data":"AAE=","PartitionKey":"k"}"#,
        ] {
            assert!(!agree("PutRecord", Format::Json, b.as_bytes()), "{b}");
        }
        assert!(parse("GetRecords", Format::Json, accepted[0].as_bytes()).is_none());
    }

    #[test]
    fn string_scan() {
        for len in 0..40 {
            let s = "a".repeat(len);
            let body = format!("\"{s}\"tail");
            assert_eq!(string_end(body.as_bytes(), 1), Some(len + 1));
            for bad in ["\\", "\n", "\u{1f}"] {
                for at in 0..len {
                    let mut t = s.clone();
                    t.replace_range(at..at + 1, bad);
                    assert_eq!(string_end(format!("\"{t}\"").as_bytes(), 1), None, "{t:?}");
                }
            }
            assert_eq!(string_end(format!("\"{s}").as_bytes(), 1), None);
        }
        assert_eq!(string_end("\"é\u{7f}ü\"".as_bytes(), 1), Some(6));
    }

    #[test]
    fn cbor_bodies() {
        use ciborium::Value as C;
        let entry = |data: C, key: &str| {
            C::Map(vec![
                (C::Text("Data".into()), data),
                (C::Text("PartitionKey".into()), C::Text(key.into())),
            ])
        };
        let body = |records: Vec<C>| {
            cbor(&C::Map(vec![
                (C::Text("Records".into()), C::Array(records)),
                (C::Text("StreamName".into()), C::Text("s".into())),
            ]))
        };
        let many = (0..500)
            .map(|i| entry(C::Bytes(vec![i as u8; i]), "k"))
            .collect();
        assert!(agree("PutRecords", Format::Cbor, &body(many)));
        assert!(agree(
            "PutRecords",
            Format::Cbor,
            &body(vec![entry(C::Text("AAE=".into()), "k")])
        ));
        assert!(!agree(
            "PutRecords",
            Format::Cbor,
            &body(vec![entry(C::Text("A".into()), "k")])
        ));
        assert!(!agree(
            "PutRecords",
            Format::Cbor,
            &body(vec![entry(C::Null, "k")])
        ));
        assert!(!agree(
            "PutRecords",
            Format::Cbor,
            &body(vec![entry(C::Bytes(vec![1]), "")])
        ));
        assert!(!agree("PutRecords", Format::Cbor, &body(vec![C::Null])));
        assert!(!agree("PutRecords", Format::Cbor, &body(vec![])));
        let record = cbor(&C::Map(vec![
            (C::Text("StreamName".into()), C::Text("s".into())),
            (C::Text("Data".into()), C::Bytes(vec![1, 2])),
            (C::Text("PartitionKey".into()), C::Text("k".into())),
            (C::Text("DryRun".into()), C::Bool(false)),
        ]));
        assert!(agree("PutRecord", Format::Cbor, &record));
        assert!(!agree(
            "PutRecord",
            Format::Cbor,
            &record[..record.len() - 1]
        ));
    }

    #[test]
    fn answers_are_byte_identical() {
        let ok = |i: usize| v1::PutRecordsResultEntry {
            shard_id: format!("shardId-{i:012}"),
            sequence_number: format!("4959{}", "0123456789".repeat(5)) + &i.to_string(),
            ..Default::default()
        };
        let failed = |msg: &str| v1::PutRecordsResultEntry {
            error_code: "ProvisionedThroughputExceededException".into(),
            error_message: msg.into(),
            ..Default::default()
        };
        let cases = [
            v1::PutRecordsResponse {
                failed_record_count: 0,
                records: vec![ok(1)],
            },
            v1::PutRecordsResponse {
                failed_record_count: 0,
                records: vec![],
            },
            v1::PutRecordsResponse {
                failed_record_count: 2,
                records: vec![
                    ok(0),
                    failed("Rate exceeded for shard \"a\\b\"\n\u{1}ü\u{7f} in stream s"),
                    failed(&"x".repeat(300)),
                ],
            },
            v1::PutRecordsResponse {
                failed_record_count: 300,
                records: (0..500).map(ok).collect(),
            },
            v1::PutRecordsResponse {
                failed_record_count: 70_000,
                records: vec![ok(7); 23],
            },
        ];
        for r in cases {
            for format in [Format::Json, Format::Cbor] {
                assert_eq!(
                    put_records_answer(format, &r),
                    encode(format, &put_records_output(r.clone())),
                    "{format:?} {r:?}"
                );
            }
        }
    }

    /// The CPU of the changed stage (body → backend request, backend answer → body) per record,
    /// old path against fast path, for 500 × 1 KiB records as SDKs send them. Run with
    /// `cargo test --release -p braid-gateway --lib fast_path_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fast_path_cost() {
        use std::time::Instant;
        let records: Vec<String> = (0..500)
            .map(|i| record(&[i as u8; 1024], &format!("{:016x}", i * 7919)))
            .collect();
        let json = format!(
            r#"{{"Records":[{}],"StreamName":"bench"}}"#,
            records.join(",")
        );
        let answer = v1::PutRecordsResponse {
            failed_record_count: 0,
            records: (0..500)
                .map(|i| v1::PutRecordsResultEntry {
                    shard_id: "shardId-000000000003".into(),
                    sequence_number: format!("4959{:052}", i),
                    ..Default::default()
                })
                .collect(),
        };
        let n = 200;
        for round in 0..3 {
            let t = Instant::now();
            for _ in 0..n {
                let req = generic("PutRecords", Format::Json, json.as_bytes()).unwrap();
                std::hint::black_box(req);
                let out = encode(Format::Json, &put_records_output(answer.clone()));
                std::hint::black_box(out);
            }
            let old = t.elapsed().as_secs_f64() * 1e6 / (n * 500) as f64;
            let t = Instant::now();
            for _ in 0..n {
                let req = parse("PutRecords", Format::Json, json.as_bytes()).unwrap();
                std::hint::black_box(req);
                let out = put_records_answer(Format::Json, &answer.clone());
                std::hint::black_box(out);
            }
            let new = t.elapsed().as_secs_f64() * 1e6 / (n * 500) as f64;
            println!("round {round}: generic {old:.3} us/record, fast {new:.3} us/record (both include one answer clone)");
        }
    }
}
