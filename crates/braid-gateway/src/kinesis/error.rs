//! Errors on the wire: an HTTP status and an AWS error body `{"__type": ..., "message": ...}`.
//!
//! [`WireError::from_braid`] is the one exhaustive `ErrorCode` match of the Kinesis front end.

use braid_types::error::ErrorCode;
use braid_types::BraidError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub status: u16,
    /// The exception name, as the botocore model (or AWS's front end) spells it.
    pub type_name: &'static str,
    pub message: String,
}

impl WireError {
    pub fn new(status: u16, type_name: &'static str, message: impl Into<String>) -> WireError {
        WireError {
            status,
            type_name,
            message: message.into(),
        }
    }

    /// The body could not be read as the operation's input shape.
    pub fn serialization(message: impl Into<String>) -> WireError {
        WireError::new(400, "SerializationException", message)
    }

    /// Constraint violations, in AWS's "N validation errors detected: ..." format.
    pub fn validation(message: impl Into<String>) -> WireError {
        WireError::new(400, "ValidationException", message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> WireError {
        WireError::new(400, "InvalidArgumentException", message)
    }

    /// `X-Amz-Target` names no Kinesis operation.
    pub fn unknown_operation(message: impl Into<String>) -> WireError {
        WireError::new(400, "UnknownOperationException", message)
    }

    /// An operation of the Kinesis API that Braid does not implement yet. The type is one the
    /// model lets every such operation return, so SDKs raise their ordinary modeled error.
    pub fn unsupported(operation: &str, what: &str) -> WireError {
        WireError::invalid_argument(format!(
            "Braid does not support {operation} yet: {what}. See the Status section of Braid's README."
        ))
    }

    pub fn internal(message: impl Into<String>) -> WireError {
        WireError::new(500, "InternalFailure", message)
    }

    /// The HTTP status and exception name of each Braid error code.
    pub fn from_braid(e: BraidError) -> WireError {
        let (status, type_name) = match e.code {
            ErrorCode::InvalidArgument => (400, "InvalidArgumentException"),
            ErrorCode::ResourceNotFound => (400, "ResourceNotFoundException"),
            ErrorCode::ResourceInUse => (400, "ResourceInUseException"),
            ErrorCode::LimitExceeded => (400, "LimitExceededException"),
            ErrorCode::ExpiredIterator => (400, "ExpiredIteratorException"),
            ErrorCode::ProvisionedThroughputExceeded => {
                (400, "ProvisionedThroughputExceededException")
            }
            ErrorCode::InternalFailure => (500, "InternalFailure"),
            ErrorCode::Validation => (400, "ValidationException"),
            ErrorCode::Unavailable => (503, "ServiceUnavailable"),
            // Not a modeled name: answer with the one every unimplemented operation may return.
            ErrorCode::NotImplemented => (400, "InvalidArgumentException"),
        };
        WireError::new(status, type_name, e.message)
    }
}

impl From<BraidError> for WireError {
    fn from(e: BraidError) -> WireError {
        WireError::from_braid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_kinesis_shape() {
        for c in braid_types::error::ALL {
            let w = WireError::from_braid(BraidError::new(c, "m"));
            assert_eq!(w.message, "m");
            match c {
                ErrorCode::InternalFailure => assert_eq!(w.status, 500),
                ErrorCode::Unavailable => assert_eq!(w.status, 503),
                _ => assert_eq!(w.status, 400),
            }
            if !matches!(c, ErrorCode::NotImplemented) {
                assert_eq!(w.type_name, c.kinesis_name());
            }
        }
    }
}
