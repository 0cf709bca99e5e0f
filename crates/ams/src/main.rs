//! `ams`: an AMS v1 compatible messaging server and its command-line client.
//! `main` only parses the command line and calls the library.

use clap::{CommandFactory, Parser, Subcommand};

// mimalloc rather than glibc's malloc: 10-25% more publish throughput with
// large batches (see ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc hands freed memory back to the OS only once it has been free for
/// its purge delay, and only when some thread allocating or collecting
/// notices: a server idle after a burst would keep the burst's memory. A
/// thread of its own collects twice a second, with a shorter delay than the
/// default second, so that it goes back within about half a second.
#[allow(unsafe_code)] // FFI to the allocator: two calls without preconditions.
fn return_freed_memory() {
    const PURGE_DELAY_MS: std::ffi::c_long = 250;
    const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
    // `mi_option_purge_delay` in mimalloc's `mi_option_e` (the bindings'
    // constant list stops before it); a test below checks the index.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option and collecting have no preconditions; both
    // are thread-safe.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    let spawned = std::thread::Builder::new()
        .name("ams-mem-collect".into())
        .spawn(|| {
            loop {
                std::thread::sleep(COLLECT_EVERY);
                // SAFETY: as above.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    // Without it the server only holds more memory after bursts.
    drop(spawned);
}

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
            return_freed_memory();
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

#[cfg(test)]
mod tests {
    /// Option 15 must be the purge delay: only it defaults to 1000 (ms) in
    /// the pinned mimalloc, so a version whose enum moved fails here.
    #[test]
    #[allow(unsafe_code)]
    fn option_15_is_mimallocs_purge_delay() {
        // SAFETY: reading an option has no preconditions.
        let value = unsafe { libmimalloc_sys::mi_option_get(15) };
        assert_eq!(value, 1000);
    }
}
