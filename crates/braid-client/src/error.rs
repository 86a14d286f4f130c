//! The client's error type and the mapping from gRPC statuses.

use braid_types::{BraidError, ErrorCode};
use tonic::Code;

/// An error returned by a [`crate::Client`] call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Braid (Kinesis) error.
    #[error("{0}")]
    Api(BraidError),
    /// No usable answer: connection refused or reset, timeout, HTTP/2 error.
    #[error("transport error: {0}")]
    Transport(String),
}

impl ClientError {
    /// The API error code, `None` for transport errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(e) => Some(e.code),
            ClientError::Transport(_) => None,
        }
    }

    /// Whether the same request may be sent again (possibly to another endpoint).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Api(e) => e.code.is_retryable(),
            ClientError::Transport(_) => true,
        }
    }

    pub fn api(code: ErrorCode, message: impl Into<String>) -> ClientError {
        ClientError::Api(BraidError::new(code, message))
    }
}

impl From<BraidError> for ClientError {
    fn from(e: BraidError) -> ClientError {
        ClientError::Api(e)
    }
}

/// The status message followed by its chain of sources, `a: b: c`.
fn message_with_sources(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !s_text.is_empty() && s_text != "transport error" && !text.contains(&s_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&s_text);
        }
        source = s.source();
    }
    if text.is_empty() {
        text = format!("gRPC status {:?}", status.code());
    }
    text
}

/// Maps a gRPC status to a [`ClientError`].
///
/// A status carrying the `x-braid-error` metadata is an API error with that Kinesis exception
/// name. Otherwise the status came from the transport (or a server that is not Braid):
/// `Unavailable`, `DeadlineExceeded`, `Cancelled`, and `Unknown`/`Internal` statuses produced by
/// a transport failure become [`ClientError::Transport`]; `InvalidArgument` and `Unimplemented`
/// map to their Braid codes; anything else is an `InternalFailure`.
pub fn status_to_error(status: &tonic::Status) -> ClientError {
    if let Some(name) = status.metadata().get(braid_proto::ERROR_METADATA_KEY) {
        let name = name.to_str().unwrap_or("").trim();
        return match ErrorCode::from_kinesis_name(name) {
            Some(code) => ClientError::api(code, status.message()),
            None => ClientError::api(
                ErrorCode::InternalFailure,
                format!("{name}: {}", status.message()),
            ),
        };
    }
    let message = message_with_sources(status);
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            ClientError::Transport(message)
        }
        Code::Unknown | Code::Internal if looks_like_transport(status) => {
            ClientError::Transport(message)
        }
        Code::InvalidArgument => ClientError::api(ErrorCode::InvalidArgument, message),
        Code::Unimplemented => ClientError::api(ErrorCode::NotImplemented, message),
        _ => ClientError::api(ErrorCode::InternalFailure, message),
    }
}

fn looks_like_transport(status: &tonic::Status) -> bool {
    if std::error::Error::source(status).is_some() {
        return true;
    }
    let m = status.message();
    m.starts_with("transport error")
        || m.starts_with("h2 protocol error")
        || m.starts_with("error trying to connect")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_name(code: Code, msg: &str, name: &str) -> tonic::Status {
        let mut s = tonic::Status::new(code, msg);
        s.metadata_mut()
            .insert(braid_proto::ERROR_METADATA_KEY, name.parse().unwrap());
        s
    }

    #[test]
    fn metadata_names_become_api_errors() {
        for code in braid_types::error::ALL {
            let s = with_name(Code::FailedPrecondition, "boom", code.kinesis_name());
            let e = status_to_error(&s);
            assert_eq!(e, ClientError::api(code, "boom"));
            assert_eq!(e.code(), Some(code));
            assert_eq!(e.is_retryable(), code.is_retryable());
        }
        // The metadata wins even over a transport-looking code.
        let s = with_name(Code::Unavailable, "no leader", "ResourceNotFoundException");
        assert_eq!(
            status_to_error(&s).code(),
            Some(ErrorCode::ResourceNotFound)
        );
    }

    #[test]
    fn unknown_metadata_name_is_internal_failure() {
        let s = with_name(Code::Internal, "weird", "SomethingElseException");
        let e = status_to_error(&s);
        assert_eq!(e.code(), Some(ErrorCode::InternalFailure));
        assert!(e.to_string().contains("SomethingElseException"));
    }

    #[test]
    fn transport_statuses() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled] {
            let e = status_to_error(&tonic::Status::new(code, "tcp connect error"));
            assert!(matches!(e, ClientError::Transport(_)), "{code:?}");
            assert!(e.is_retryable());
            assert_eq!(e.code(), None);
        }
        let e = status_to_error(&tonic::Status::new(Code::Unknown, "transport error"));
        assert!(matches!(e, ClientError::Transport(_)));
        let e = status_to_error(&tonic::Status::new(
            Code::Internal,
            "h2 protocol error: reset",
        ));
        assert!(matches!(e, ClientError::Transport(_)));
    }

    #[test]
    fn other_statuses_without_metadata() {
        let e = status_to_error(&tonic::Status::new(Code::Unknown, "server bug"));
        assert_eq!(
            e,
            ClientError::api(ErrorCode::InternalFailure, "server bug")
        );
        let e = status_to_error(&tonic::Status::new(Code::Unimplemented, "no such method"));
        assert_eq!(e.code(), Some(ErrorCode::NotImplemented));
        assert!(!e.is_retryable());
        let e = status_to_error(&tonic::Status::new(Code::InvalidArgument, "bad"));
        assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    }

    #[test]
    fn display() {
        let e = ClientError::api(ErrorCode::ResourceNotFound, "Stream x not found.");
        assert_eq!(
            e.to_string(),
            "ResourceNotFoundException: Stream x not found."
        );
        assert_eq!(
            ClientError::Transport("refused".into()).to_string(),
            "transport error: refused"
        );
    }
}
