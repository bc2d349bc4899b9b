//! What a person sees on a terminal: human-readable sizes, rates and
//! durations, and progress bars (indicatif) on stderr.
//!
//! Bars are drawn only when stderr is a terminal; otherwise every function
//! here that makes a bar returns `None`, so piped output stays exactly what
//! it was. All bars hang off one [`MultiProgress`], and [`LogBridge`] routes
//! log records through it, so a warning printed mid-download appears above
//! the bar instead of tearing it.
//!
//! Modules: `report` (the engine's values and events in words), `status`
//! (a peer's status as the `status` command prints it).

pub mod repl;
pub mod report;
pub mod status;

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub use crate::name::shown;
use crate::peer::download::progress::DownloadView;

const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// `745 B`, `1.5 KiB`, `1.0 GiB`: binary units, one decimal.
pub fn format_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Switch units before rounding would print "1024.0".
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1 peer`, `2 peers`: `n` and the noun, plural unless `n` is 1 (the
/// nouns we count all take an `s`).
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `2.0 MiB/s`; rates are bytes per second.
pub fn format_speed(bytes_per_sec: f64) -> String {
    let whole = if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
        bytes_per_sec.round() as u64
    } else {
        0
    };
    format!("{}/s", format_size(whole))
}

/// `42 s`, `3 min 05 s`, `2 h 07 min`: for times left and elapsed.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// Whether progress bars are drawn: stderr is a terminal.
pub fn bars_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| io::stderr().is_terminal())
}

/// The one set of bars every bar joins, drawn on stderr.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Runs `f` (which prints) with the bars cleared, redrawing them after.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    bars().suspend(f)
}

/// A bar style whose sizes read like [`format_size`], and whose rate and
/// time left are the average since the bar started, not counting the first
/// `base` bytes (a resumed download's). indicatif's own estimate starts near
/// zero and takes many seconds to catch up, which reads as a stall.
fn style(template: &str, base: Arc<AtomicU64>) -> ProgressStyle {
    let rate = move |s: &ProgressState| {
        let secs = s.elapsed().as_secs_f64();
        let done = s.pos().saturating_sub(base.load(Ordering::Relaxed));
        (secs >= 0.5 && done > 0).then(|| done as f64 / secs)
    };
    let eta_rate = rate.clone();
    // The templates are constants of this file, checked by a unit test.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("done", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&format_size(s.pos()));
        })
        .with_key("total", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&s.len().map_or_else(|| "?".into(), format_size));
        })
        .with_key("rate", move |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&rate(s).map_or_else(|| "-".into(), format_speed));
        })
        .with_key("left", move |s: &ProgressState, w: &mut dyn fmt::Write| {
            let left = s.len().unwrap_or(0).saturating_sub(s.pos()) as f64;
            let text = eta_rate(s).map_or_else(
                || "-".into(),
                // Rounded up: "0 s" only once nothing is left.
                |r| format_duration(Duration::from_secs_f64((left / r).ceil().min(1e9))),
            );
            let _ = w.write_str(&text);
        })
}

const HASH_TEMPLATE: &str = "hashing {msg} [{bar:30}] {done}/{total} {rate} ETA {left}";
const DOWNLOAD_TEMPLATE: &str = "{msg} [{bar:30}] {done}/{total} {rate} ETA {left} {prefix}";

/// A bar for hashing `len` bytes of `name`; `None` off a terminal.
pub fn hashing_bar(name: &str, len: u64) -> Option<ProgressBar> {
    if !bars_enabled() {
        return None;
    }
    let style = style(HASH_TEMPLATE, Arc::default());
    let bar = bars().add(ProgressBar::new(len).with_style(style));
    bar.set_message(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}

/// A download's bar: bytes, rate, time left, and how many peers delivered a
/// chunk lately, drawn from the download's [`DownloadView`].
pub struct DownloadBar {
    bar: ProgressBar,
    /// Bytes resumed from an earlier attempt, left out of the rate.
    resumed: Arc<AtomicU64>,
}

impl DownloadBar {
    /// A bar for downloading `size` bytes of `name`; `None` off a terminal.
    pub fn new(name: &str, size: u64) -> Option<DownloadBar> {
        if !bars_enabled() {
            return None;
        }
        let resumed = Arc::new(AtomicU64::new(0));
        let style = style(DOWNLOAD_TEMPLATE, Arc::clone(&resumed));
        let bar = bars().add(ProgressBar::new(size).with_style(style));
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(DownloadBar { bar, resumed })
    }

    /// Shows the download as `view` has it.
    pub fn update(&self, view: &DownloadView) {
        if view.total_chunks > 0 {
            // The size the tracker or link claimed may be missing; the
            // manifest's is the real one.
            self.bar.set_length(view.size);
        }
        if self.resumed.swap(view.resumed_bytes, Ordering::Relaxed) != view.resumed_bytes {
            // Chunks resumed from an earlier attempt are not this attempt's
            // speed: the bar's clock starts with them in.
            self.bar.reset_elapsed();
        }
        let active = view.peers.iter().filter(|p| p.active).count();
        let files = match view.files_total {
            0 => String::new(),
            total => format!(", {}/{total} files", view.files_done),
        };
        self.bar.set_prefix(format!(
            "{active} peer{}{files}",
            if active == 1 { "" } else { "s" }
        ));
        self.bar.set_position(view.done_bytes);
    }
}

impl Drop for DownloadBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        bars().remove(&self.bar);
    }
}

/// Removes a finished bar from the screen.
pub fn clear_bar(bar: &ProgressBar) {
    bar.finish_and_clear();
    bars().remove(bar);
}

/// A logger that writes through env_logger while the bars are lifted, so
/// log lines never tear a bar.
pub struct LogBridge {
    inner: env_logger::Logger,
}

impl LogBridge {
    /// Installs `inner` as the global logger behind the bridge.
    pub fn install(inner: env_logger::Logger) -> Result<(), log::SetLoggerError> {
        let level = inner.filter();
        log::set_boxed_logger(Box::new(LogBridge { inner }))?;
        log::set_max_level(level);
        Ok(())
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.inner.matches(record) {
            return;
        }
        // Above the prompt while the line editor is up, never through it.
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        // Log lines quote names from other peers: escaped, as everywhere a
        // person reads one (see `shown`), so no line can be reordered,
        // hidden or split in two.
        let text = record.args().to_string();
        let text = shown(&text);
        if crate::console::log_line(&format!("{level}: {text}")) {
            return;
        }
        let log = || {
            self.inner.log(
                &log::Record::builder()
                    .args(format_args!("{text}"))
                    .level(record.level())
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            )
        };
        if bars_enabled() {
            suspend(log);
        } else {
            log();
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human_readable() {
        let cases = [
            (0, "0 B"),
            (745, "745 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (16 << 20, "16.0 MiB"),
            (1 << 30, "1.0 GiB"),
            ((1 << 30) + (1 << 29), "1.5 GiB"),
            (5 << 40, "5.0 TiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(format_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn speeds_and_durations() {
        assert_eq!(format_speed(2.0 * 1024.0 * 1024.0), "2.0 MiB/s");
        assert_eq!(format_speed(0.0), "0 B/s");
        assert_eq!(format_speed(f64::NAN), "0 B/s");
        assert_eq!(format_speed(-5.0), "0 B/s");
        assert_eq!(format_duration(Duration::from_millis(4900)), "4 s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(format_duration(Duration::from_secs(7620)), "2 h 07 min");
    }

    #[test]
    fn bar_templates_parse() {
        for t in [HASH_TEMPLATE, DOWNLOAD_TEMPLATE] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}
