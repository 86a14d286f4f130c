//! Error codes. Each code maps to exactly one Kinesis exception name; gateways translate codes to
//! wire errors with one exhaustive `match` and never invent names of their own.

use std::fmt;

/// A stable error code. Numbers are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u16)]
pub enum ErrorCode {
    InvalidArgument = 1,
    ResourceNotFound = 2,
    ResourceInUse = 3,
    LimitExceeded = 4,
    ExpiredIterator = 5,
    ProvisionedThroughputExceeded = 6,
    /// The write could not be made durable on a quorum, or another server-side failure.
    InternalFailure = 7,
    Validation = 8,
    /// Service is not ready yet (no leader, cluster starting). Retryable.
    Unavailable = 9,
    /// The operation is part of the Kinesis API but Braid does not implement it yet.
    NotImplemented = 10,
}

impl ErrorCode {
    /// The exact Kinesis exception name.
    pub fn kinesis_name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "InvalidArgumentException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::ExpiredIterator => "ExpiredIteratorException",
            ErrorCode::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorCode::InternalFailure => "InternalFailure",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::Unavailable => "ServiceUnavailable",
            ErrorCode::NotImplemented => "UnsupportedOperation",
        }
    }

    pub fn from_u16(v: u16) -> Option<ErrorCode> {
        Some(match v {
            1 => ErrorCode::InvalidArgument,
            2 => ErrorCode::ResourceNotFound,
            3 => ErrorCode::ResourceInUse,
            4 => ErrorCode::LimitExceeded,
            5 => ErrorCode::ExpiredIterator,
            6 => ErrorCode::ProvisionedThroughputExceeded,
            7 => ErrorCode::InternalFailure,
            8 => ErrorCode::Validation,
            9 => ErrorCode::Unavailable,
            10 => ErrorCode::NotImplemented,
            _ => return None,
        })
    }

    pub fn from_kinesis_name(name: &str) -> Option<ErrorCode> {
        ALL.iter().copied().find(|c| c.kinesis_name() == name)
    }

    /// Whether a client may retry the same request unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable
                | ErrorCode::InternalFailure
                | ErrorCode::ProvisionedThroughputExceeded
        )
    }
}

pub const ALL: [ErrorCode; 10] = [
    ErrorCode::InvalidArgument,
    ErrorCode::ResourceNotFound,
    ErrorCode::ResourceInUse,
    ErrorCode::LimitExceeded,
    ErrorCode::ExpiredIterator,
    ErrorCode::ProvisionedThroughputExceeded,
    ErrorCode::InternalFailure,
    ErrorCode::Validation,
    ErrorCode::Unavailable,
    ErrorCode::NotImplemented,
];

/// An operating error: expected, typed, carried to the client.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BraidError {
    pub code: ErrorCode,
    pub message: String,
}

impl BraidError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> BraidError {
        BraidError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::ResourceNotFound, message)
    }
    pub fn in_use(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::ResourceInUse, message)
    }
    pub fn limit(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::LimitExceeded, message)
    }
    pub fn internal(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::InternalFailure, message)
    }
    pub fn unavailable(message: impl Into<String>) -> BraidError {
        BraidError::new(ErrorCode::Unavailable, message)
    }
    pub fn stream_not_found(name: &str) -> BraidError {
        BraidError::not_found(format!(
            "Stream {name} under account 000000000000 not found."
        ))
    }
}

impl fmt::Display for BraidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.kinesis_name(), self.message)
    }
}

impl std::error::Error for BraidError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for c in ALL {
            assert_eq!(ErrorCode::from_u16(c as u16), Some(c));
            assert_eq!(ErrorCode::from_kinesis_name(c.kinesis_name()), Some(c));
            assert!(names.insert(c.kinesis_name()));
        }
        assert_eq!(ErrorCode::from_u16(0), None);
    }
}
