//! Names and identifiers: stream names, shard ids, ARNs, partition keys.

use crate::error::BraidError;
use crate::limits::*;

pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// Validates a stream name: 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub fn validate_stream_name(name: &str) -> Result<(), BraidError> {
    if name.is_empty() || name.len() > STREAM_NAME_CHARS_MAX {
        return Err(BraidError::new(
            crate::ErrorCode::Validation,
            format!("1 validation error detected: Value '{name}' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to {STREAM_NAME_CHARS_MAX}"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(BraidError::new(
            crate::ErrorCode::Validation,
            format!("1 validation error detected: Value '{name}' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
        ));
    }
    Ok(())
}

/// Validates a partition key: 1..=256 Unicode characters.
pub fn validate_partition_key(key: &str) -> Result<(), BraidError> {
    let chars = key.chars().count();
    if !(PARTITION_KEY_CHARS_MIN..=PARTITION_KEY_CHARS_MAX).contains(&chars) {
        return Err(BraidError::new(
            crate::ErrorCode::Validation,
            format!("1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between {PARTITION_KEY_CHARS_MIN} and {PARTITION_KEY_CHARS_MAX} (was {chars})"),
        ));
    }
    Ok(())
}

/// `shardId-000000000007`.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Parses `shardId-000000000007` (or a bare number, as Kinesis tolerates) into its index.
pub fn parse_shard_id(s: &str) -> Result<u32, BraidError> {
    let digits = s.strip_prefix("shardId-").unwrap_or(s);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BraidError::invalid(format!("Invalid ShardId: {s}")));
    }
    digits
        .parse::<u32>()
        .map_err(|_| BraidError::not_found(format!("Shard {s} not found.")))
}

pub fn stream_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
}

/// Extracts the stream name from a stream ARN.
pub fn stream_name_from_arn(arn: &str) -> Result<String, BraidError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "kinesis" {
        if let Some(name) = parts[5].strip_prefix("stream/") {
            let name = name.split('/').next().unwrap_or(name);
            validate_stream_name(name)?;
            return Ok(name.to_string());
        }
    }
    Err(BraidError::invalid(format!("Invalid StreamARN: {arn}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_stream_name("orders.v1_x-y").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("bad name").is_err());
        assert!(validate_stream_name(&"a".repeat(129)).is_err());
        assert!(validate_partition_key("").is_err());
        assert!(validate_partition_key(&"é".repeat(256)).is_ok());
        assert!(validate_partition_key(&"é".repeat(257)).is_err());
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(parse_shard_id("shardId-000000000007").unwrap(), 7);
        assert_eq!(parse_shard_id("7").unwrap(), 7);
        assert!(parse_shard_id("shardId-x").is_err());
        let arn = stream_arn(DEFAULT_REGION, DEFAULT_ACCOUNT, "orders");
        assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
        assert_eq!(stream_name_from_arn(&arn).unwrap(), "orders");
        assert!(stream_name_from_arn("arn:aws:s3:::bucket").is_err());
    }
}
