//! The `cairn` command line.
//!
//! This crate owns argument parsing, password and repository resolution
//! (including the embedded default repository), output formatting (text,
//! `--json`, progress bars) and exit codes. It holds no backup logic: every
//! command parses and validates its arguments, then calls
//! `cairn-repository`. Errors are `anyhow` here and only here.

// First: its `outln!`/`out!` macros serve the modules below.
#[macro_use]
mod output;
mod cli;
mod commands;
mod context;
mod exit;
mod parse;
mod progress;
mod signals;

use clap::Parser as _;
use std::process::ExitCode;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,cairn_service=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Keep glibc from hoarding freed buffers. Chunks (up to 8 MiB) and packs
/// (16 MiB) are large, short-lived allocations made by many threads; with
/// glibc's default dynamic mmap threshold, freed ones stay in per-thread
/// arenas and peak RSS roughly doubles (184 MB against 97 MB on the 1 GiB
/// benchmark). A fixed threshold returns them to the system on free.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only adjusts allocator parameters; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Report a command-line error. clap's usage line lists the options that
/// were given, environment variables included, as if the command needed
/// them (`Usage: cairn forget --repo <LOCATION> --password-file <FILE>`);
/// the command's plain usage replaces it.
fn usage_error(e: clap::Error) -> ! {
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let mut cmd = cli::Cli::command();
    cmd.build();
    let mut sub = &cmd;
    for arg in std::env::args_os().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if let Some(next) = sub.find_subcommand(arg) {
            sub = next;
        }
    }
    let usage = sub.clone().render_usage().to_string();
    let text = e.render().to_string();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("Usage: ") {
            out.push_str(&usage);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    eprint!("{out}");
    std::process::exit(2);
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    init_logging(cli.global.verbose);
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if let Some(exit::Reported(code)) = err.downcast_ref::<exit::Reported>() {
                return ExitCode::from(*code);
            }
            eprintln!("cairn: error: {}", exit::render(&err));
            ExitCode::from(exit::code_for(&err))
        }
    }
}
