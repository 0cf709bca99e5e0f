//! `ams`: an AMS v1 compatible messaging server. `main` only parses the command
//! line and calls the library.

use clap::{Parser, Subcommand};

/// A messaging service compatible with the ARGO Messaging Service v1 API.
#[derive(Parser)]
#[command(name = "ams", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded store in --data-dir).
    Serve(ams::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| match cli.command {
            Command::Serve(args) => runtime.block_on(ams::serve(args)),
        });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain on one line; no backtrace for a user's mistake.
            eprintln!("ams: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
