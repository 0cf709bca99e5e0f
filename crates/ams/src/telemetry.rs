//! Logging: `tracing` to stderr, text or JSON, filtered by the log level (or
//! `RUST_LOG`). Tokens and payloads are never logged by our code.
//!
//! The access log (one line per request, target [`ACCESS_TARGET`]) is
//! buffered when stderr is not a terminal, as nginx's `access_log … buffer=
//! flush=` does: lines are written together at most [`FLUSH_EVERY`] after
//! they were logged, or once [`BUFFER_BYTES`] have gathered, instead of one
//! `write` per request on the request's path. Every other line (start-up,
//! warnings, errors) is written at once, after the access lines before it,
//! so the order of lines is kept. Ending the process normally, and a panic,
//! flush the buffer; a `kill -9` loses at most the last [`FLUSH_EVERY`] of
//! access lines.

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// The access log's `tracing` target (ams-http logs each request there).
pub const ACCESS_TARGET: &str = ams_http::ACCESS_LOG_TARGET;

/// Buffered access lines are written at most this long after they were logged.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Buffered access lines are written once they fill this many bytes.
pub const BUFFER_BYTES: usize = 64 << 10;

/// Flushes the buffered access lines when dropped: hold it until the server
/// has stopped.
#[must_use = "the guard flushes the log when the server has stopped"]
pub struct LogGuard(Arc<Sink>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Installs the global subscriber.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<LogGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive)?,
        // The storage engine's own info lines are noise at our info level.
        _ if !level.contains('=') => {
            EnvFilter::try_new(format!("{level},fjall=warn,lsm_tree=warn"))
                .map_err(|e| anyhow::anyhow!("configuration key `log_level`: {e}"))?
        }
        _ => EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("configuration key `log_level`: {e}"))?,
    };
    let terminal = io::stderr().is_terminal();
    // A person at a terminal sees every line at once.
    let sink = Arc::new(Sink::new(Box::new(io::stderr()), !terminal));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SinkWriter(sink.clone()))
        // Colour codes only for a person at a terminal, not for files and pipes.
        .with_ansi(terminal);
    let installed = match format {
        LogFormat::Text => builder.event_format(TextFormat::new(Clock)).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    if !terminal {
        start_flusher(&sink)?;
        let panicking = sink.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panicking.flush_unless_busy();
            previous(info);
        }));
    }
    Ok(LogGuard(sink))
}

/// The text format: tracing's default one, except that access lines are
/// written directly, in the same layout (`<time>  INFO ams_http::access:
/// request method=POST route="topics:publish" status=200 …`). The general
/// formatter spent about 10k instructions on one (callgrind), a sixth of a
/// small publish's, much of it in its styling hooks, which run even without
/// colours. Other lines, and any line in colour or inside a span, go to the
/// general formatter.
struct TextFormat<T> {
    full: Format<Full, T>,
    timer: T,
}

impl<T: FormatTime + Clone> TextFormat<T> {
    fn new(timer: T) -> Self {
        Self {
            full: Format::default().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T> FormatEvent<S, N> for TextFormat<T>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        // Only ams-http's access lines: their values are a message, strings
        // and numbers, never errors or `log.*` metadata, which the general
        // formatter treats specially.
        let ours = meta.target() == ACCESS_TARGET
            && meta.fields().len() == ams_http::ACCESS_LOG_FIELDS.len()
            && meta
                .fields()
                .iter()
                .all(|f| ams_http::ACCESS_LOG_FIELDS.contains(&f.name()));
        if !ours || writer.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        // As `Format<Full>` lays a line out without colours.
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        let level = match *meta.level() {
            tracing::Level::TRACE => "TRACE",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::INFO => " INFO",
            tracing::Level::WARN => " WARN",
            tracing::Level::ERROR => "ERROR",
        };
        write!(writer, " {level} {}: ", meta.target())?;
        let sanitize = writer.sanitizes_ansi_escapes();
        let mut fields = PlainFields {
            writer: &mut writer,
            sanitize,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(writer)
    }
}

/// tracing-subscriber's [`SystemTime`] timer (RFC 3339 in UTC, to the
/// microsecond), with each thread keeping the text up to the second: the
/// date's formatting was 2.4k instructions of an access line's 6.6k
/// (callgrind), and lines come many to a second.
#[derive(Clone, Copy)]
struct Clock;

/// `YYYY-MM-DDTHH:MM:SS.`
type SecondText = [u8; 20];

thread_local! {
    /// The last second this thread wrote, and its text.
    static LAST_SECOND: Cell<Option<(u64, SecondText)>> = const { Cell::new(None) };
}

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write_time(w, std::time::SystemTime::now())
    }
}

/// Writes `at` as [`SystemTime`] would.
fn write_time(w: &mut impl std::fmt::Write, at: std::time::SystemTime) -> std::fmt::Result {
    let Ok(since) = at.duration_since(UNIX_EPOCH) else {
        // Before 1970: tracing's own formatting (of its own reading).
        return write!(w, "{}", FallbackTime);
    };
    let secs = since.as_secs();
    let text = match LAST_SECOND.get() {
        Some((s, text)) if s == secs => text,
        _ => {
            let Some(text) = second_text(secs) else {
                return write!(w, "{}", FallbackTime);
            };
            LAST_SECOND.set(Some((secs, text)));
            text
        }
    };
    let mut micros = since.subsec_micros();
    let mut tail = *b"000000Z";
    for digit in tail[..6].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    // Both are ASCII digits and punctuation.
    w.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)?;
    w.write_str(std::str::from_utf8(&tail).map_err(|_| std::fmt::Error)?)
}

/// The text of a second after 1970, up to year 9999 (four-digit years: the
/// others are [`FallbackTime`]'s).
fn second_text(secs: u64) -> Option<SecondText> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    if t.year() > 9999 {
        return None;
    }
    let mut text = [0u8; 20];
    let s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    text.copy_from_slice(s.as_bytes());
    Some(text)
}

/// tracing-subscriber's formatting of the current time, for clocks out of
/// [`second_text`]'s range.
struct FallbackTime;

impl std::fmt::Display for FallbackTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        SystemTime
            .format_time(&mut Writer::new(&mut text))
            .map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// Writes an access line's fields as tracing's default visitor does without
/// colours: the message first, as is but with terminal control characters
/// escaped (unless the subscriber was told not to), then ` name=value` with
/// `value`'s `Debug` form (so strings are quoted, `%`-fields are their
/// `Display`).
struct PlainFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    sanitize: bool,
    first: bool,
    result: std::fmt::Result,
}

impl PlainFields<'_, '_> {
    /// Writes a field after the separator, unless writing failed before.
    fn field(&mut self, write: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        if self.result.is_err() {
            return;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        self.result = self.result.and_then(|()| write(self.writer));
    }
}

impl Visit for PlainFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if name == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else if value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            // What `Debug` writes for such text, without its per-character
            // escaping pass.
            self.field(|w| {
                w.write_str(name)?;
                w.write_str("=\"")?;
                w.write_str(value)?;
                w.write_char('"')
            });
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let name = field.name();
        self.field(|w| {
            w.write_str(name)?;
            w.write_char('=')?;
            write!(w, "{value}")
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        let sanitize = self.sanitize;
        self.field(|w| match name {
            "message" if sanitize => {
                std::fmt::Write::write_fmt(&mut Escaping(w), format_args!("{value:?}"))
            }
            "message" => write!(w, "{value:?}"),
            _ => write!(w, "{name}={value:?}"),
        });
    }
}

/// Passes text on with terminal control characters escaped, as
/// tracing-subscriber escapes messages (against injected escape sequences).
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl std::fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// A thread that writes buffered lines every [`FLUSH_EVERY`]; it holds the
/// sink weakly and ends after it.
fn start_flusher(sink: &Arc<Sink>) -> anyhow::Result<()> {
    let weak = Arc::downgrade(sink);
    std::thread::Builder::new()
        .name("ams-log-flush".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(sink) = weak.upgrade() else { return };
                sink.flush();
            }
        })
        .map(drop)
        .map_err(|e| anyhow::anyhow!("cannot start the log flusher: {e}"))
}

/// The log's output: a buffer of access lines and the stream they go to.
struct Sink {
    /// Access lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// The stream; its lock orders writes, so that a line written directly
    /// never overtakes access lines logged before it.
    out: Mutex<Box<dyn Write + Send>>,
    /// Whether access lines are buffered.
    buffering: bool,
}

impl Sink {
    fn new(out: Box<dyn Write + Send>, buffering: bool) -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(out),
            buffering,
        }
    }

    /// Adds an access line; writes the buffer once it is full.
    fn buffer(&self, line: &[u8]) {
        let full = {
            let mut pending = self.pending.lock();
            pending.extend_from_slice(line);
            pending.len() >= BUFFER_BYTES
        };
        if full {
            self.flush();
        }
    }

    /// Writes a line at once, after the access lines buffered before it.
    fn direct(&self, line: &[u8]) -> io::Result<()> {
        let mut out = self.out.lock();
        let pending = std::mem::take(&mut *self.pending.lock());
        write_out(&mut out, &pending);
        out.write_all(line)
    }

    /// [`Sink::flush`], unless a write is under way (the panicking thread
    /// may be the one holding the locks: waiting would hang the panic).
    fn flush_unless_busy(&self) {
        if let Some(mut out) = self.out.try_lock()
            && let Some(pending) = self.pending.try_lock().map(|mut p| std::mem::take(&mut *p))
        {
            write_out(&mut out, &pending);
            let _ = out.flush();
        }
    }

    /// Writes the buffered access lines.
    fn flush(&self) {
        let mut out = self.out.lock();
        let pending = std::mem::take(&mut *self.pending.lock());
        write_out(&mut out, &pending);
        let _ = out.flush();
    }
}

/// Writes taken access lines; the caller holds the stream's lock, the buffer's
/// is already released so that requests can log meanwhile.
fn write_out(out: &mut Box<dyn Write + Send>, pending: &[u8]) {
    // A log line that cannot be written has nowhere to be reported.
    if !pending.is_empty() {
        let _ = out.write_all(pending);
    }
}

/// `tracing`'s view of the sink: access lines are buffered, others direct.
#[derive(Clone)]
struct SinkWriter(Arc<Sink>);

/// One line's writer.
struct LineWriter<'a> {
    sink: &'a Sink,
    buffered: bool,
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            sink: &self.0,
            buffered: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            sink: &self.0,
            buffered: self.0.buffering && meta.target() == ACCESS_TARGET,
        }
    }
}

impl Write for LineWriter<'_> {
    // tracing's fmt layer formats a whole line, then hands it over in one
    // `write_all`, so a call is a line (or, for a huge line, part of one).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.buffered {
            self.sink.buffer(buf);
        } else {
            self.sink.direct(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what was written.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The messages written, in order (the text after the last `: `).
        fn messages(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().clone())
                .unwrap()
                .lines()
                .map(|l| l.rsplit(": ").next().unwrap().to_owned())
                .collect()
        }
    }

    /// Runs `f` with a subscriber writing to a fresh sink.
    fn logging(buffering: bool, f: impl FnOnce(&Arc<Sink>, &Captured)) -> Captured {
        let out = Captured::default();
        let sink = Arc::new(Sink::new(Box::new(out.clone()), buffering));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(SinkWriter(sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || f(&sink, &out));
        out
    }

    /// A clock that always says the same, so that lines can be compared.
    #[derive(Clone)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
            w.write_str("2026-12-03T16:52:47.292038Z")
        }
    }

    /// The lines `f` logs, formatted by `format`.
    fn lines<E>(format: E, f: impl FnOnce()) -> String
    where
        E: for<'w> FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let out = Captured::default();
        let sink = Arc::new(Sink::new(Box::new(out.clone()), false));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(SinkWriter(sink))
            .with_ansi(false)
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(out.0.lock().clone()).unwrap()
    }

    /// Access lines as `ams_http::handle` logs them, and a few odd ones.
    fn log_some() {
        tracing::info!(
            target: ACCESS_TARGET,
            method = %"POST",
            route = "topics:publish",
            status = 200u16,
            latency_us = 123u64,
            request_id = %"66f215d8de940d20",
            "request"
        );
        // The access fields with odd values: the shortcut writes these too.
        tracing::info!(
            target: ACCESS_TARGET,
            method = %"GET",
            route = "a \"b\" \u{1b}[31m",
            status = 404u16,
            latency_us = 0u64,
            request_id = %"x\u{85}y",
            "esc \u{1b}[31m bel \u{7} c1 \u{85} \u{80} \u{9f} del \u{7f} \"q\" é"
        );
        // Other fields: the general formatter's.
        tracing::info!(target: ACCESS_TARGET, r#type = "a \"b\"", ok = true, n = -4i64, "x {} y", 5);
        tracing::info!(
            target: ACCESS_TARGET,
            method = %"GET",
            route = "r",
            status = 500u16,
            latency_us = 1u64,
            request_id = %"i",
            log.file = "x.rs",
            "request"
        );
        tracing::warn!(target: ACCESS_TARGET, "no fields");
        tracing::info!(target: ACCESS_TARGET, f = 1.5f64);
        tracing::info!(other = "not an access line", "elsewhere");
        let span = tracing::info_span!("inside", id = 7);
        span.in_scope(|| tracing::info!(target: ACCESS_TARGET, route = "r", "request"));
    }

    #[test]
    fn access_lines_written_directly_are_the_general_formatters() {
        let fast = lines(TextFormat::new(Fixed), log_some);
        let general = lines(Format::default().with_timer(Fixed), log_some);
        assert_eq!(fast, general);
        assert!(
            fast.starts_with(
                "2026-12-03T16:52:47.292038Z  INFO ams_http::access: request method=POST \
                 route=\"topics:publish\" status=200 latency_us=123 request_id=66f215d8de940d20\n"
            ),
            "{fast}"
        );
        assert_eq!(fast.lines().count(), 8, "{fast}");
        // Escaped as the general formatter escapes messages, not values.
        assert!(fast.contains(r"esc \x1b[31m bel \x07 c1 \u{85}"), "{fast}");
    }

    fn time_at(secs: u64, nanos: u32) -> String {
        let mut text = String::new();
        write_time(&mut text, UNIX_EPOCH + Duration::new(secs, nanos)).unwrap();
        text
    }

    #[test]
    fn the_clock_writes_rfc3339_to_the_microsecond() {
        assert_eq!(time_at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(time_at(951_782_400, 999), "2000-02-29T00:00:00.000000Z");
        assert_eq!(time_at(1_709_164_800, 1_000), "2024-02-29T00:00:00.000001Z");
        assert_eq!(
            time_at(1_764_967_367, 292_038_999),
            "2025-12-05T20:42:47.292038Z"
        );
        // The second kept by the thread changes with the time.
        assert_eq!(
            time_at(4_102_444_799, 999_999_999),
            "2099-12-31T23:59:59.999999Z"
        );
        assert_eq!(time_at(1_764_967_367, 5_000), "2025-12-05T20:42:47.000005Z");
    }

    #[test]
    fn the_clock_agrees_with_tracings() {
        // The two read the clock one after the other: equal up to the
        // second unless a second ended in between (then the next try is).
        let same = (0..3).any(|_| {
            let mut ours = String::new();
            Clock.format_time(&mut Writer::new(&mut ours)).unwrap();
            let mut theirs = String::new();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            ours.len() == theirs.len() && ours[..20] == theirs[..20]
        });
        assert!(same);
        // Out of range: tracing's text (of the current time).
        let mut far = String::new();
        write_time(&mut far, UNIX_EPOCH + Duration::from_secs(300_000_000_000)).unwrap();
        assert_eq!(far.len(), "2026-12-06T07:00:00.000000Z".len());
        assert!(far.ends_with('Z'));
    }

    #[test]
    fn access_lines_wait_for_a_flush_and_other_lines_keep_their_place() {
        logging(true, |sink, out| {
            tracing::info!(target: ACCESS_TARGET, "GET 1");
            tracing::info!(target: ACCESS_TARGET, "GET 2");
            assert!(out.messages().is_empty(), "access lines are buffered");
            tracing::info!("listening");
            assert_eq!(out.messages(), ["GET 1", "GET 2", "listening"]);
            tracing::info!(target: ACCESS_TARGET, "GET 3");
            assert_eq!(out.messages().len(), 3);
            sink.flush();
            assert_eq!(out.messages(), ["GET 1", "GET 2", "listening", "GET 3"]);
        });
    }

    #[test]
    fn a_full_buffer_is_written_without_waiting() {
        let long = "x".repeat(1000);
        logging(true, |_, out| {
            let written = || out.0.lock().len();
            let mut lines = 0;
            while written() == 0 && lines < 1000 {
                tracing::info!(target: ACCESS_TARGET, "{long}");
                lines += 1;
            }
            // Written by the line that filled the buffer, not before.
            assert!(written() >= BUFFER_BYTES, "{} bytes", written());
            assert!(written() < BUFFER_BYTES + 1100, "{} bytes", written());
            assert_eq!(out.messages().len(), lines);
        });
    }

    #[test]
    fn at_a_terminal_every_line_is_written_at_once() {
        let out = logging(false, |_, _| tracing::info!(target: ACCESS_TARGET, "GET 1"));
        assert_eq!(out.messages(), ["GET 1"]);
    }

    #[test]
    fn a_panic_flushes_unless_a_write_is_under_way() {
        logging(true, |sink, out| {
            tracing::info!(target: ACCESS_TARGET, "GET 1");
            let held = sink.pending.lock();
            sink.flush_unless_busy();
            drop(held);
            assert!(out.messages().is_empty());
            sink.flush_unless_busy();
            assert_eq!(out.messages(), ["GET 1"]);
        });
    }

    #[test]
    fn dropping_the_guard_flushes() {
        let out = logging(true, |sink, _| {
            tracing::info!(target: ACCESS_TARGET, "GET 1");
            drop(LogGuard(sink.clone()));
        });
        assert_eq!(out.messages(), ["GET 1"]);
    }

    #[test]
    fn the_flusher_writes_buffered_lines_by_itself() {
        let out = logging(true, |sink, _| {
            start_flusher(sink).unwrap();
            tracing::info!(target: ACCESS_TARGET, "GET 1");
            // Waits for the flusher thread's write (an event, not a duration).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while still_pending(sink) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert_eq!(out.messages(), ["GET 1"]);
    }

    fn still_pending(sink: &Sink) -> bool {
        !sink.pending.lock().is_empty()
    }
}
