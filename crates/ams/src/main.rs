//! `ams`: an AMS v1 compatible messaging server and its command-line client.
//! `main` only parses the command line and calls the library.

use clap::{CommandFactory, Parser, Subcommand};

// mimalloc rather than glibc's malloc: glibc's malloc/free took about a
// tenth of the server's user CPU time under W3 (see ARCHITECTURE.md,
// "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A messaging service compatible with the ARGO Messaging Service v1 API,
/// and its command-line client.
#[derive(Parser)]
#[command(name = "ams", version, about)]
#[command(
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 server unreachable, \
4 denied (401/403), 5 not found, 6 conflict, 7 invalid request, 8 server error."
)]
struct Cli {
    #[command(flatten)]
    connection: ams::cli::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded store in --data-dir).
    Serve(Box<ams::ServeArgs>),
    #[command(flatten)]
    Client(ams::cli::ClientCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let outcome = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(ams::serve(*args)));
            match outcome {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    // The cause chain on one line; no backtrace for a user's mistake.
                    eprintln!("ams: error: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Client(command) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(ams::cli::run(cli.connection, command)),
            Err(e) => {
                eprintln!("ams: error: cannot start: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ams", &mut std::io::stdout());
            std::process::ExitCode::SUCCESS
        }
    }
}
