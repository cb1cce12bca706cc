//! The netprof binary: parses the command line, owns signals and the panic
//! hook, runs one command of the library and turns its error into one line
//! and an exit status that says what kind of error it was.

mod cli;

use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;

/// The last panic's message and place, kept by the hook for the one line
/// printed if it ends the run. Panics the library turns into errors (a
/// parser's on a corrupt file) print nothing.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    cli::signals::default_sigpipe();
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{message}{place}"));
        }
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match std::panic::catch_unwind(|| cli::run(cli.command)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("netprof: error: {e}");
            ExitCode::from(e.kind().exit_code())
        }
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .unwrap_or_default();
            eprintln!(
                "netprof: error: internal error (a bug; please report it): {}",
                what.replace('\n', " ")
            );
            ExitCode::from(101)
        }
    }
}

/// clap's errors in one line (help and version print as clap prints them).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let text = e.render().to_string();
    // The message's first paragraph: "... not provided:" is followed by the
    // arguments' names on lines of their own.
    let first = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first);
    eprintln!("netprof: error: {message}; see `{}`", help_command());
    ExitCode::from(2)
}

/// `netprof SUBCOMMAND --help` for the subcommand on the command line, if any.
fn help_command() -> String {
    use clap::CommandFactory;
    let root = cli::Cli::command();
    let sub = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| root.find_subcommand(a).is_some());
    match sub {
        Some(sub) => format!("netprof {sub} --help"),
        None => "netprof --help".to_string(),
    }
}
