//! Logging: `tracing` to stderr, text or JSON, filtered by the log level (or
//! `RUST_LOG`). Tokens and payloads are never logged by our code.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not for files and pipes.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
