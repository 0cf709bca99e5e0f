//! How client commands print: human tables and message lines by default,
//! JSON (the API's own shapes, one document or one line per message) with
//! `--json`.

use std::io::Write;

use ams_types::wire;
use base64::Engine as _;
use comfy_table::{Table, presets};
use serde::Serialize;

/// Printing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables and readable lines.
    Human,
    /// JSON.
    Json,
}

/// `println!` for the client commands: a closed standard output (a pager
/// that quit, `| head`) ends the command quietly with exit code 1, as Unix
/// tools do, instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

/// Writes one line to standard output (see [`say!`]).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if written.is_err() {
        std::process::exit(i32::from(super::exit::FAILURE));
    }
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    say!("{text}");
}

/// Prints `value` as one compact JSON line (streams), flushing at once so a
/// pipe sees each message as it arrives. An error means nobody reads the
/// output any more (a closed pipe): the caller stops.
pub fn json_line<T: Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}

/// Prints rows under a header as an aligned table.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        say!("(none)");
        return;
    }
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        t.add_row(row);
    }
    say!("{t}");
}

/// Prints `key: value` lines.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        say!("{k:<width$}  {v}");
    }
}

/// The last segment of `projects/P/topics/t`-style names.
pub fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A message's data for people: the decoded text when it is base64 of
/// printable UTF-8, else the data string as sent.
pub fn readable(data: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\t'))
        .unwrap_or_else(|| data.to_owned())
}

/// One message as a line: id, publish time, attributes, data. An error means
/// nobody reads the output any more (a closed pipe): the caller stops.
pub fn message_line(m: &wire::Message) -> std::io::Result<()> {
    let attributes: Vec<String> = m
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut out = std::io::stdout().lock();
    if attributes.is_empty() {
        writeln!(
            out,
            "#{} {} {}",
            m.message_id,
            m.publish_time,
            readable(&m.data)
        )
    } else {
        writeln!(
            out,
            "#{} {} [{}] {}",
            m.message_id,
            m.publish_time,
            attributes.join(" "),
            readable(&m.data)
        )
    }?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_shown_decoded_when_it_is_text() {
        assert_eq!(readable("aGVsbG8="), "hello");
        assert_eq!(readable("not base64!"), "not base64!");
        // Binary (a control byte) stays as sent.
        assert_eq!(readable("AAEC"), "AAEC");
        assert_eq!(short("projects/P/topics/t"), "t");
    }
}
