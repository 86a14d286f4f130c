//! Input shapes and their checking, as AWS's front end does before an operation runs.
//!
//! Checking a request against its shape has two steps, with AWS's two error types:
//! 1. types (`SerializationException`): a string where a number belongs, a bad base64 blob, a
//!    list where a structure belongs... The first one stops the request. Unknown members are
//!    ignored and `null` means absent, as AWS does. Blobs and timestamps are converted here,
//!    the only place where JSON and CBOR differ in meaning.
//! 2. constraints (`ValidationException`): required members, lengths, patterns, ranges and
//!    enums from the botocore model, reported all at once in AWS's format:
//!    `2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint:
//!    Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; ...`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use regex::Regex;

use super::error::WireError;
use super::value::{Format, Value};

/// String constraints.
#[derive(Debug)]
pub struct StrRule {
    pub min: Option<usize>,
    pub max: Option<usize>,
    /// A botocore pattern; it must match the whole value.
    pub pattern: Option<&'static str>,
    pub one_of: Option<&'static [&'static str]>,
}

/// A member type with its constraints.
#[derive(Debug)]
pub enum Ty {
    Str(StrRule),
    /// Integer and long members.
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    Blob {
        max: usize,
    },
    Timestamp,
    List {
        min: Option<usize>,
        max: Option<usize>,
        member: &'static Ty,
        /// How AWS prints a structure member of the list inside a message.
        member_str: &'static str,
    },
    Map {
        min: Option<usize>,
        max: Option<usize>,
        key: &'static Ty,
        value: &'static Ty,
    },
    Struct(&'static [Field]),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: &'static Ty,
    pub required: bool,
}

/// A member, checked and converted.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    Str(String),
    Int(i64),
    Bool(bool),
    Blob(Vec<u8>),
    /// Epoch milliseconds.
    Timestamp(i64),
    List(Vec<Typed>),
    Map(Vec<(String, Typed)>),
    Struct(Input),
}

/// A checked structure: its present members by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    members: BTreeMap<&'static str, Typed>,
}

impl Input {
    pub fn get(&self, name: &str) -> Option<&Typed> {
        self.members.get(name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Typed::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// A string member, empty when absent (braid.v1 messages use empty for absent).
    pub fn string(&self, name: &str) -> String {
        self.str(name).unwrap_or_default().to_string()
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Typed::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Typed::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub fn timestamp_ms(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Typed::Timestamp(t)) => Some(*t),
            _ => None,
        }
    }
    pub fn take_blob(&mut self, name: &str) -> Vec<u8> {
        match self.members.remove(name) {
            Some(Typed::Blob(b)) => b,
            _ => Vec::new(),
        }
    }
    pub fn list(&self, name: &str) -> &[Typed] {
        match self.get(name) {
            Some(Typed::List(l)) => l,
            _ => &[],
        }
    }
    pub fn take_list(&mut self, name: &str) -> Vec<Typed> {
        match self.members.remove(name) {
            Some(Typed::List(l)) => l,
            _ => Vec::new(),
        }
    }
    /// A list of strings.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.list(name)
            .iter()
            .filter_map(|t| match t {
                Typed::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
    /// A map of strings.
    pub fn string_map(&self, name: &str) -> BTreeMap<String, String> {
        match self.get(name) {
            Some(Typed::Map(m)) => m
                .iter()
                .filter_map(|(k, v)| match v {
                    Typed::Str(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }
    pub fn structure(&self, name: &str) -> Option<&Input> {
        match self.get(name) {
            Some(Typed::Struct(s)) => Some(s),
            _ => None,
        }
    }
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }
}

/// The most constraint violations one message lists.
const VIOLATIONS_MAX: usize = 10;

/// Checks a decoded request against its shape (a list of fields).
pub fn check(format: Format, body: &Value, fields: &'static [Field]) -> Result<Input, WireError> {
    let input = typed_struct(format, body, fields)?;
    let mut errors = Vec::new();
    validate_struct(&input, fields, &Path::Root, &mut errors);
    if errors.is_empty() {
        return Ok(input);
    }
    errors.truncate(VIOLATIONS_MAX);
    let n = errors.len();
    Err(WireError::validation(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        errors.join("; ")
    )))
}

fn ser(msg: impl Into<String>) -> WireError {
    WireError::serialization(msg)
}

fn unexpected(v: &Value, want: &str) -> WireError {
    match v {
        Value::List(_) => ser("Start of list found where not expected"),
        Value::Map(_) => ser("Start of structure or map found where not expected."),
        Value::Bool(_) => ser(format!("class java.lang.Boolean can not be converted to {want}")),
        Value::Int(_) | Value::Float(_) => ser(format!(
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to {want}"
        )),
        Value::Str(_) => ser(format!("class java.lang.String can not be converted to {want}")),
        Value::Bytes(_) => ser(format!("A blob can not be converted to {want}")),
        Value::Timestamp(_) => ser(format!("A timestamp can not be converted to {want}")),
        Value::Null => ser(format!("null can not be converted to {want}")),
    }
}

/// Base64 as AWS reads blobs: padding optional.
pub(crate) static BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn typed_struct(format: Format, v: &Value, fields: &'static [Field]) -> Result<Input, WireError> {
    let Value::Map(_) = v else {
        return Err(match v {
            Value::List(_) => ser("Start of list found where not expected"),
            _ => ser("Expected null"),
        });
    };
    let mut members = BTreeMap::new();
    for f in fields {
        if let Some(m) = v.get(f.name) {
            members.insert(f.name, typed(format, m, f.ty)?);
        }
    }
    Ok(Input { members })
}

fn typed(format: Format, v: &Value, ty: &'static Ty) -> Result<Typed, WireError> {
    Ok(match ty {
        Ty::Str(_) => match v {
            Value::Str(s) => Typed::Str(s.clone()),
            other => return Err(unexpected(other, "an String")),
        },
        Ty::Int { .. } => match v {
            Value::Int(i) => Typed::Int((*i).clamp(i64::MIN as i128, i64::MAX as i128) as i64),
            // AWS truncates fractional numbers.
            Value::Float(f) if f.is_finite() => Typed::Int(f.floor() as i64),
            other => return Err(unexpected(other, "an Integer")),
        },
        Ty::Bool => match v {
            Value::Bool(b) => Typed::Bool(*b),
            Value::Str(s) => {
                return Err(ser(format!(
                    "'{}' can not be converted to an Boolean",
                    s.to_uppercase()
                )))
            }
            other => return Err(unexpected(other, "an Boolean")),
        },
        Ty::Blob { .. } => match v {
            Value::Bytes(b) => Typed::Blob(b.clone()),
            Value::Str(s) => Typed::Blob(BASE64.decode(s.as_bytes()).map_err(|e| {
                ser(format!(
                    "'{}' can not be converted to a Blob: {e}",
                    shorten(s, 64)
                ))
            })?),
            other => return Err(unexpected(other, "a Blob")),
        },
        Ty::Timestamp => match (v, format) {
            (Value::Timestamp(ms), _) => Typed::Timestamp(*ms),
            // JSON: epoch seconds, fractional. CBOR without tag 1: the Java SDK's millis.
            (Value::Int(i), Format::Json) => Typed::Timestamp(
                i.saturating_mul(1000)
                    .clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            ),
            (Value::Float(f), Format::Json) if f.is_finite() => {
                Typed::Timestamp((f * 1000.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
            }
            (Value::Int(i), Format::Cbor) => {
                Typed::Timestamp((*i).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            }
            (Value::Float(f), Format::Cbor) if f.is_finite() => {
                Typed::Timestamp(f.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
            }
            (other, _) => return Err(unexpected(other, "milliseconds since epoch")),
        },
        Ty::List { member, .. } => match v {
            Value::List(items) => Typed::List(
                items
                    .iter()
                    .filter(|x| !matches!(x, Value::Null))
                    .map(|x| typed(format, x, member))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(_) => {
                return Err(ser("Start of structure or map found where not expected."))
            }
            _ => return Err(ser("Expected list or null")),
        },
        Ty::Map { value, .. } => match v {
            Value::Map(m) => Typed::Map(
                m.iter()
                    .filter(|(_, x)| !matches!(x, Value::Null))
                    .map(|(k, x)| Ok((k.clone(), typed(format, x, value)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
            Value::List(_) => return Err(ser("Start of list found where not expected")),
            _ => return Err(ser("Expected map or null")),
        },
        Ty::Struct(fields) => Typed::Struct(typed_struct(format, v, fields)?),
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn regex(pattern: &'static str) -> Regex {
    static CACHE: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(pattern)
        .or_insert_with(|| {
            let p = pattern.trim_start_matches('^').trim_end_matches('$');
            Regex::new(&format!("^(?:{p})$")).expect("model patterns are valid regexes")
        })
        .clone()
}

/// How AWS prints a value in a validation message.
fn value_str(t: &Typed, ty: &Ty) -> String {
    match t {
        // AWS echoes the value; a bound keeps answers to absurd inputs small.
        Typed::Str(s) => shorten(s, 2048),
        Typed::Int(i) => i.to_string(),
        Typed::Bool(b) => b.to_string(),
        Typed::Blob(b) => format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len()),
        Typed::Timestamp(ms) => ms.to_string(),
        Typed::List(items) => {
            let member_ty = match ty {
                Ty::List { member, .. } => Some(*member),
                _ => None,
            };
            let parts: Vec<String> = items
                .iter()
                .map(|x| match (x, ty) {
                    (Typed::Struct(_), Ty::List { member_str, .. }) => member_str.to_string(),
                    _ => member_ty.map(|m| value_str(x, m)).unwrap_or_default(),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
        Typed::Map(m) => {
            let value_ty = match ty {
                Ty::Map { value, .. } => Some(*value),
                _ => None,
            };
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        value_ty.map(|t| value_str(v, t)).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Typed::Struct(_) => "structure".to_string(),
    }
}

/// Whether a string satisfies a string type's constraints: the same checks as
/// [`scalar_violations`], without building messages (`put_fast`'s check of valid input).
pub(crate) fn str_valid(s: &str, ty: &Ty) -> bool {
    let Ty::Str(rule) = ty else {
        return false;
    };
    if let Some(one_of) = rule.one_of {
        if !one_of.contains(&s) {
            return false;
        }
    }
    if rule.min.is_some() || rule.max.is_some() {
        let len = s.chars().count();
        if rule.min.is_some_and(|min| len < min) || rule.max.is_some_and(|max| len > max) {
            return false;
        }
    }
    match rule.pattern {
        Some(p) => regex(p).is_match(s),
        None => true,
    }
}

/// The constraint messages a scalar value fails (no path, no value).
fn scalar_violations(t: &Typed, ty: &Ty) -> Vec<String> {
    let mut out = Vec::new();
    match (t, ty) {
        (Typed::Str(s), Ty::Str(rule)) => {
            if let Some(one_of) = rule.one_of {
                if !one_of.contains(&s.as_str()) {
                    out.push(format!(
                        "Member must satisfy enum value set: [{}]",
                        one_of.join(", ")
                    ));
                }
            }
            if let Some(p) = rule.pattern {
                if !regex(p).is_match(s) {
                    out.push(format!(
                        "Member must satisfy regular expression pattern: {p}"
                    ));
                }
            }
            let len = s.chars().count();
            if let Some(min) = rule.min {
                if len < min {
                    out.push(format!(
                        "Member must have length greater than or equal to {min}"
                    ));
                }
            }
            if let Some(max) = rule.max {
                if len > max {
                    out.push(format!(
                        "Member must have length less than or equal to {max}"
                    ));
                }
            }
        }
        (Typed::Int(i), Ty::Int { min, max }) => {
            if let Some(min) = min {
                if i < min {
                    out.push(format!(
                        "Member must have value greater than or equal to {min}"
                    ));
                }
            }
            if let Some(max) = max {
                if i > max {
                    out.push(format!(
                        "Member must have value less than or equal to {max}"
                    ));
                }
            }
        }
        (Typed::Blob(b), Ty::Blob { max }) if b.len() > *max => {
            out.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
        _ => {}
    }
    out
}

/// Where a value sits in the input, as AWS names it in ValidationException messages
/// (`records.2.member.partitionKey`). Built as a chain on the stack and printed only when a
/// constraint fails: valid input (every PutRecords record) costs no string work.
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'static str),
    Member(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(&lower_first(name)),
            Path::Field(parent, name) => write!(f, "{parent}.{}", lower_first(name)),
            Path::Member(parent, i) => write!(f, "{parent}.{i}.member"),
        }
    }
}

fn push(errors: &mut Vec<String>, value: Option<String>, path: &Path<'_>, msg: &str) {
    let value = match value {
        Some(v) => format!("'{v}'"),
        None => "null".to_string(),
    };
    errors.push(format!(
        "Value {value} at '{path}' failed to satisfy constraint: {msg}"
    ));
}

fn validate_struct(
    input: &Input,
    fields: &'static [Field],
    parent: &Path<'_>,
    errors: &mut Vec<String>,
) {
    for f in fields {
        let path = Path::Field(parent, f.name);
        match input.get(f.name) {
            None if f.required => push(errors, None, &path, "Member must not be null"),
            None => {}
            Some(t) => validate(t, f.ty, &path, errors),
        }
    }
}

fn validate(t: &Typed, ty: &'static Ty, path: &Path<'_>, errors: &mut Vec<String>) {
    match (t, ty) {
        (
            Typed::List(items),
            Ty::List {
                min, max, member, ..
            },
        ) => {
            let shown = || Some(value_str(t, ty));
            if let Some(min) = min {
                if items.len() < *min {
                    push(
                        errors,
                        shown(),
                        path,
                        &format!("Member must have length greater than or equal to {min}"),
                    );
                }
            }
            if let Some(max) = max {
                if items.len() > *max {
                    push(
                        errors,
                        shown(),
                        path,
                        &format!("Member must have length less than or equal to {max}"),
                    );
                }
            }
            match member {
                Ty::Struct(fields) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Typed::Struct(s) = item {
                            validate_struct(s, fields, &Path::Member(path, i + 1), errors);
                        }
                    }
                }
                _ => {
                    let mut inner: Vec<String> = Vec::new();
                    for item in items {
                        for m in scalar_violations(item, member) {
                            if !inner.contains(&m) {
                                inner.push(m);
                            }
                        }
                    }
                    if !inner.is_empty() {
                        push(
                            errors,
                            shown(),
                            path,
                            &format!("Member must satisfy constraint: [{}]", inner.join(", ")),
                        );
                    }
                }
            }
        }
        (
            Typed::Map(m),
            Ty::Map {
                min,
                max,
                key,
                value,
            },
        ) => {
            let shown = || Some(value_str(t, ty));
            if let Some(min) = min {
                if m.len() < *min {
                    push(
                        errors,
                        shown(),
                        path,
                        &format!("Member must have length greater than or equal to {min}"),
                    );
                }
            }
            if let Some(max) = max {
                if m.len() > *max {
                    push(
                        errors,
                        shown(),
                        path,
                        &format!("Member must have length less than or equal to {max}"),
                    );
                }
            }
            let mut key_msgs: Vec<String> = Vec::new();
            let mut value_msgs: Vec<String> = Vec::new();
            for (k, v) in m {
                for x in scalar_violations(&Typed::Str(k.clone()), key) {
                    if !key_msgs.contains(&x) {
                        key_msgs.push(x);
                    }
                }
                for x in scalar_violations(v, value) {
                    if !value_msgs.contains(&x) {
                        value_msgs.push(x);
                    }
                }
            }
            if !key_msgs.is_empty() {
                push(
                    errors,
                    shown(),
                    path,
                    &format!(
                        "Map keys must satisfy constraint: [{}]",
                        key_msgs.join(", ")
                    ),
                );
            }
            if !value_msgs.is_empty() {
                push(
                    errors,
                    shown(),
                    path,
                    &format!(
                        "Map value must satisfy constraint: [{}]",
                        value_msgs.join(", ")
                    ),
                );
            }
        }
        (Typed::Struct(s), Ty::Struct(fields)) => validate_struct(s, fields, path, errors),
        _ => {
            for m in scalar_violations(t, ty) {
                push(errors, Some(value_str(t, ty)), path, &m);
            }
        }
    }
}
