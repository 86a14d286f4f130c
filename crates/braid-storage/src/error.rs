//! The error type of the segment log.

use std::path::PathBuf;

/// Everything that can go wrong in a [`crate::SegmentLog`]. Bad input is always an error, never a
/// panic.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes fail validation: a bad frame in a segment that is not the last one (found by
    /// `open`), a CRC mismatch found by a read, a damaged `purged` file, or segments whose indexes
    /// do not follow each other.
    #[error("corrupt segment log: {}: at offset {offset}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A payload larger than `braid_types::limits::ENTRY_BYTES_MAX`.
    #[error("entry payload is {len} bytes, more than the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// `append` with an index that is not `last_index + 1`.
    #[error("append is not contiguous: expected index {expected}, got {got}")]
    NotContiguous { expected: u64, got: u64 },
    /// `append` to an empty log with an index at or below the purge point: such an entry would
    /// be ignored after a restart, so it is refused.
    #[error("index {index} is at or below the purged index {purged}")]
    BelowPurged { index: u64, purged: u64 },
    /// `append` of index `u64::MAX` (reserved so that `last_index + 1` never overflows).
    #[error("index {index} is out of range")]
    IndexOutOfRange { index: u64 },
    /// The [`crate::LogConfig`] cannot be used.
    #[error("invalid segment log config: {reason}")]
    InvalidConfig { reason: String },
    /// An earlier fsync or partial update failed, so what is on disk is unknown. The log refuses
    /// further writes and syncs (reads still work); reopen it to recover from what is on disk.
    #[error("segment log is unusable after an earlier I/O failure; reopen it")]
    Failed,
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}
