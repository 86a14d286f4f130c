//! The client commands of the `braid` binary, and what they share.

pub mod bench;
pub mod cluster;
pub mod get;
pub mod put;
pub mod stream;
pub mod tail;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use braid_client::{v1, Client, ClientOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403";

/// Connection flags shared by every client command.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// Braid nodes to talk to, comma-separated (host:port or http://host:port); calls fail over
    /// between them.
    #[arg(long, global = true, env = "BRAID_ENDPOINT", value_delimiter = ',', default_value = DEFAULT_ENDPOINTS, help_heading = "Client connection")]
    pub endpoint: Vec<String>,
    /// Deadline of each call attempt, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "BRAID_TIMEOUT_MS",
        default_value_t = 10_000,
        help_heading = "Client connection"
    )]
    pub timeout_ms: u64,
    /// Retries of a failed call (on transport errors and retryable errors), across endpoints.
    #[arg(
        long,
        global = true,
        env = "BRAID_RETRIES",
        default_value_t = 10,
        help_heading = "Client connection"
    )]
    pub retries: u32,
    /// Send puts and reads to the node given first (or the next, on failure) and let it forward
    /// them, instead of straight to each shard's leader.
    #[arg(
        long,
        global = true,
        env = "BRAID_NO_LEADER_ROUTING",
        help_heading = "Client connection"
    )]
    pub no_leader_routing: bool,
}

impl ConnArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let options = ClientOptions {
            retries: self.retries,
            timeout_ms: self.timeout_ms,
            route_to_leaders: !self.no_leader_routing,
            ..ClientOptions::default()
        };
        Ok(Client::new(&self.endpoint, options)?)
    }
}

/// Prints rows under headers, each column as wide as its widest cell.
pub fn write_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            s.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// One record as `shard seq key data`; data as lossy UTF-8 (newlines escaped) or hex.
pub fn format_record(shard_id: &str, record: &v1::Record, hex: bool) -> String {
    let data = if hex {
        to_hex(&record.data)
    } else {
        printable(&record.data)
    };
    format!(
        "{shard_id} {} {} {data}",
        record.sequence_number, record.partition_key
    )
}

pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() && c != '\t' => s.push_str(&c.escape_default().to_string()),
            c => s.push(c),
        }
    }
    s
}

/// A progress bar on stderr, hidden when stderr is not a terminal. `len` None makes a spinner.
pub fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{bar:40}}] {{human_pos}}/{{human_len}} {what} ({{per_sec}}, eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {{elapsed_precise}} {{human_pos}} {what} ({{per_sec}})"))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// `2024-05-01T12:00:00.000Z` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn format_timestamp_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp_ms(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(
            format_timestamp_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_timestamp_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_timestamp_ms(0), "-");
    }

    #[test]
    fn records_and_tables() {
        let r = v1::Record {
            sequence_number: "49".into(),
            approximate_arrival_timestamp_ms: 0,
            data: b"a\nb\\".to_vec().into(),
            partition_key: "k".into(),
        };
        assert_eq!(
            format_record("shardId-000000000001", &r, false),
            "shardId-000000000001 49 k a\\nb\\\\"
        );
        assert_eq!(format_record("s", &r, true), "s 49 k 610a625c");
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A    BB\nxyz  1\nq    22\n"
        );
    }
}
