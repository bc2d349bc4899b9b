//! What both binaries share: logging set-up and the one-line fatal error.

/// Logs to stderr: warnings by default, `-v` info, `-vv` debug; `RUST_LOG`
/// overrides.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

/// Prints `PROGRAM: error: <cause chain on one line>` and exits with 1.
pub fn exit_with_error(program: &str, err: &anyhow::Error) -> ! {
    eprintln!("{program}: error: {err:#}");
    std::process::exit(1);
}
