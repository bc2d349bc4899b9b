//! Where lines for the user go when they do not answer the command being
//! typed: a background download's end, a warning. On a terminal, while the
//! REPL's line editor is up, they go through its external printer, which
//! prints above the prompt and redraws the line being typed; otherwise
//! straight to stdout (messages) or stderr (log records).
//!
//! One printer per process, set by the line editor for as long as it lives
//! ([`Printer::install`] returns the guard), like the logger it serves.

use crate::sync::LockExt;
use std::io::Write;
use std::sync::Mutex;

/// Something that prints a line above an active prompt.
pub trait LinePrinter: Send {
    fn print(&mut self, text: String);
}

static PRINTER: Mutex<Option<Box<dyn LinePrinter>>> = Mutex::new(None);

fn printer() -> std::sync::MutexGuard<'static, Option<Box<dyn LinePrinter>>> {
    // A print cannot leave the slot half-changed: safe after a panic.
    PRINTER.locked()
}

/// While alive, lines go through the installed printer.
pub struct Printer(());

impl Printer {
    pub fn install(p: Box<dyn LinePrinter>) -> Printer {
        *printer() = Some(p);
        Printer(())
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        *printer() = None;
    }
}

/// Prints `text` (one or more lines) for the user, above the prompt if
/// one is up.
pub fn say(text: impl Into<String>) {
    let text = text.into();
    let mut slot = printer();
    match slot.as_mut() {
        Some(p) => p.print(text),
        None => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

/// Prints a log line above the prompt, if one is up; returns whether it
/// did (else the logger writes it to stderr itself).
pub fn log_line(text: &str) -> bool {
    match printer().as_mut() {
        Some(p) => {
            p.print(text.trim_end().to_string());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Collect(Arc<Mutex<Vec<String>>>);

    impl LinePrinter for Collect {
        fn print(&mut self, text: String) {
            self.0.lock().unwrap().push(text);
        }
    }

    #[test]
    fn lines_go_through_the_printer_while_it_is_installed() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let guard = Printer::install(Box::new(Collect(Arc::clone(&seen))));
        say("done");
        assert!(log_line("warning: x\n"));
        drop(guard);
        assert!(!log_line("not shown"));
        assert_eq!(*seen.lock().unwrap(), ["done", "warning: x"]);
    }
}
