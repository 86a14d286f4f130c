//! The frame format: encoding, decoding and the sequential scan used by recovery.
//!
//! ```text
//! magic u32 | len u32 | crc32c u32 | index u64 | timestamp_ms u64 | payload (len bytes)
//! ```
//! All little-endian. The CRC covers `index`, `timestamp_ms` and the payload, i.e. every byte of
//! the frame from offset 12 on.
//!
//! Versioning: a segment file has no header, and a frame has no version or flags field. The magic
//! (or the high bits of `len`, which `parse_header` bounds by `ENTRY_BYTES_MAX`) could mark frames
//! of a later encoding, but only for readers that know that encoding: this reader takes any frame
//! it cannot parse for a torn tail and cuts it off the last segment. So the segment encoding is
//! versioned by the data directory as a whole (`braid_node::format::DATA_FORMAT_VERSION`, checked
//! before any segment log of a node is opened); a change to this layout must bump that version.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use braid_types::limits::ENTRY_BYTES_MAX;

/// First four bytes of every frame ("BRDF" read as a little-endian u32).
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"BRDF");
/// Bytes before the payload.
pub(crate) const HEADER_BYTES: usize = 28;
/// The largest frame that can be written.
pub(crate) const FRAME_BYTES_MAX: usize = HEADER_BYTES + ENTRY_BYTES_MAX;

/// CRC of a frame: over the little-endian index, timestamp and the payload.
pub(crate) fn frame_crc(index: u64, timestamp_ms: u64, payload: &[u8]) -> u32 {
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&index.to_le_bytes());
    head[8..].copy_from_slice(&timestamp_ms.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), payload)
}

/// The header of the frame that carries `payload`.
/// The caller has checked `payload.len() <= ENTRY_BYTES_MAX`.
pub(crate) fn header(index: u64, timestamp_ms: u64, payload: &[u8]) -> [u8; HEADER_BYTES] {
    assert!(payload.len() <= ENTRY_BYTES_MAX);
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[8..12].copy_from_slice(&frame_crc(index, timestamp_ms, payload).to_le_bytes());
    h[12..20].copy_from_slice(&index.to_le_bytes());
    h[20..28].copy_from_slice(&timestamp_ms.to_le_bytes());
    h
}

/// Builds one complete frame in a single buffer (tests build frames by hand).
#[cfg(test)]
/// The caller has checked `payload.len() <= ENTRY_BYTES_MAX`.
pub(crate) fn encode(index: u64, timestamp_ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&header(index, timestamp_ms, payload));
    out.extend_from_slice(payload);
    out
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub len: u32,
    pub crc: u32,
    pub index: u64,
    pub timestamp_ms: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Parses a header, checking the magic and the length bound.
pub(crate) fn parse_header(b: &[u8; HEADER_BYTES]) -> Result<Header, String> {
    let magic = u32_at(b, 0);
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#010x}"));
    }
    let len = u32_at(b, 4);
    if len as usize > ENTRY_BYTES_MAX {
        return Err(format!(
            "frame length {len} exceeds the entry limit {ENTRY_BYTES_MAX}"
        ));
    }
    Ok(Header {
        len,
        crc: u32_at(b, 8),
        index: u64_at(b, 12),
        timestamp_ms: u64_at(b, 20),
    })
}

/// Validates one complete frame (`buf` is exactly the frame) that must hold `expected_index`.
/// Returns its timestamp; the payload is `buf[HEADER_BYTES..]`.
pub(crate) fn decode(buf: &[u8], expected_index: u64) -> Result<u64, String> {
    let head: &[u8; HEADER_BYTES] = buf
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("frame of {} bytes is shorter than a header", buf.len()))?;
    let h = parse_header(head)?;
    let payload = &buf[HEADER_BYTES..];
    if payload.len() != h.len as usize {
        return Err(format!(
            "frame length {} does not match its slot of {} payload bytes",
            h.len,
            payload.len()
        ));
    }
    if h.index != expected_index {
        return Err(format!(
            "frame holds index {}, expected {expected_index}",
            h.index
        ));
    }
    let crc = frame_crc(h.index, h.timestamp_ms, payload);
    if crc != h.crc {
        return Err(format!(
            "CRC mismatch for index {}: stored {:#010x}, computed {crc:#010x}",
            h.index, h.crc
        ));
    }
    Ok(h.timestamp_ms)
}

/// Sequential reading through positional reads, so that the (shared) file cursor is never used.
struct PositionalReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PositionalReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "seek out of range");
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(invalid)?,
            SeekFrom::End(_) => return Err(invalid()),
        };
        Ok(self.pos)
    }
}

fn reader(file: &File, capacity: usize) -> BufReader<PositionalReader<'_>> {
    BufReader::with_capacity(capacity, PositionalReader { file, pos: 0 })
}

/// What a sequential scan of one segment file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// File offset of each valid frame, in order; frame `i` holds index `first_index + i`.
    pub offsets: Vec<u32>,
    /// Bytes covered by the valid frames (the offset just past the last valid frame).
    pub valid_bytes: u64,
    /// Largest timestamp among the valid frames (0 if none).
    pub max_timestamp_ms: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop: Option<String>,
}

/// Reads `file` (of `file_len` bytes) from the start and validates every frame: magic, length,
/// CRC and consecutive indexes starting at `first_index`. Stops at the first bad or incomplete
/// frame and says why in [`Scan::stop`]. I/O errors are returned as such.
pub(crate) fn scan(file: &File, file_len: u64, first_index: u64) -> io::Result<Scan> {
    let mut out = Scan::default();
    let mut reader = reader(file, 256 * 1024);
    let mut payload = Vec::new();
    let mut pos: u64 = 0;
    let mut expected = first_index;
    loop {
        let remaining = file_len - pos;
        if remaining == 0 {
            break;
        }
        if remaining < HEADER_BYTES as u64 {
            out.stop = Some(format!("short frame header ({remaining} bytes)"));
            break;
        }
        let mut head = [0u8; HEADER_BYTES];
        reader.read_exact(&mut head)?;
        let h = match parse_header(&head) {
            Ok(h) => h,
            Err(reason) => {
                out.stop = Some(reason);
                break;
            }
        };
        let frame_len = HEADER_BYTES as u64 + u64::from(h.len);
        if frame_len > remaining {
            out.stop = Some(format!(
                "short frame: needs {frame_len} bytes, {remaining} left"
            ));
            break;
        }
        if pos + frame_len > u64::from(u32::MAX) {
            out.stop = Some("segment larger than 4 GiB".to_string());
            break;
        }
        if h.index != expected {
            out.stop = Some(format!(
                "frame holds index {}, expected {expected}",
                h.index
            ));
            break;
        }
        payload.resize(h.len as usize, 0);
        reader.read_exact(&mut payload)?;
        let crc = frame_crc(h.index, h.timestamp_ms, &payload);
        if crc != h.crc {
            out.stop = Some(format!(
                "CRC mismatch for index {}: stored {:#010x}, computed {crc:#010x}",
                h.index, h.crc
            ));
            break;
        }
        out.offsets.push(pos as u32);
        out.max_timestamp_ms = out.max_timestamp_ms.max(h.timestamp_ms);
        pos += frame_len;
        expected += 1;
    }
    out.valid_bytes = pos;
    Ok(out)
}

/// Largest timestamp among the frames at `offsets` (already validated), reading only headers.
pub(crate) fn max_timestamp(file: &File, offsets: &[u32]) -> io::Result<u64> {
    let mut reader = reader(file, 64 * 1024);
    let mut pos: u64 = 0;
    let mut max = 0;
    for &off in offsets {
        let off = u64::from(off);
        assert!(off >= pos, "frame offsets must increase");
        reader.seek_relative((off - pos) as i64)?;
        let mut head = [0u8; HEADER_BYTES];
        reader.read_exact(&mut head)?;
        pos = off + HEADER_BYTES as u64;
        max = max.max(u64_at(&head, 20));
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        for len in [0usize, 1, 27, 28, 1000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let frame = encode(42, 1_700_000_000_000, &payload);
            assert_eq!(frame.len(), HEADER_BYTES + len);
            assert_eq!(decode(&frame, 42), Ok(1_700_000_000_000));
            assert_eq!(&frame[HEADER_BYTES..], &payload[..]);
            let h = parse_header(frame[..HEADER_BYTES].try_into().unwrap()).unwrap();
            assert_eq!(h.len as usize, len);
            assert_eq!(h.index, 42);
        }
    }

    #[test]
    fn crc_covers_index_timestamp_and_payload() {
        let frame = encode(7, 99, b"hello");
        // Every byte except the magic/len (checked separately) and the crc itself is covered.
        for at in 12..frame.len() {
            let mut bad = frame.clone();
            bad[at] ^= 0x01;
            let h = parse_header(bad[..HEADER_BYTES].try_into().unwrap()).unwrap();
            let err = decode(&bad, h.index).unwrap_err();
            assert!(err.contains("CRC"), "byte {at}: {err}");
        }
        let mut bad = frame.clone();
        bad[9] ^= 0x80;
        assert!(decode(&bad, 7).unwrap_err().contains("CRC"));
        let mut bad = frame.clone();
        bad[0] ^= 0x01;
        assert!(decode(&bad, 7).unwrap_err().contains("magic"));
        let mut bad = frame;
        bad[4] ^= 0x01;
        assert!(decode(&bad, 7).unwrap_err().contains("length"));
    }

    #[test]
    fn decode_checks_index_and_size() {
        let frame = encode(7, 99, b"hello");
        assert!(decode(&frame, 8).unwrap_err().contains("expected 8"));
        assert!(decode(&frame[..10], 7).is_err());
        assert!(decode(&frame[..frame.len() - 1], 7).is_err());
        let mut huge = frame;
        huge[4..8].copy_from_slice(&(ENTRY_BYTES_MAX as u32 + 1).to_le_bytes());
        assert!(decode(&huge, 7).unwrap_err().contains("exceeds"));
    }

    #[test]
    fn magic_is_stable() {
        assert_eq!(&MAGIC.to_le_bytes(), b"BRDF");
    }
}
