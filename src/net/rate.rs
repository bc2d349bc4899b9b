//! Bandwidth caps: a token bucket shared by every connection of one direction
//! (upload or download), metered in slices of at most [`RATE_SLICE`] bytes so the
//! rate stays smooth. The cap can be changed or lifted while transfers run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bounds::{RATE_MAX_NAP, RATE_SLICE};

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid rate {0:?}: expected bytes per second like 500K, 10M or 1G (K/M/G are 1024-based), or off")]
pub struct RateError(String);

/// Parses `off`, `0` (no cap) or a byte rate with an optional K/M/G suffix
/// (binary: `1K` = 1024 bytes per second; a trailing `B` or `/s` is allowed).
pub fn parse_rate(text: &str) -> Result<Option<u64>, RateError> {
    let err = || RateError(text.to_string());
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let scale: f64 = match unit {
        ' ' => 1.0,
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let value: f64 = number.parse().map_err(|_| err())?;
    if !value.is_finite() || value < 0.0 || value * scale > 1e15 {
        return Err(err());
    }
    let rate = (value * scale).round() as u64;
    Ok((rate > 0).then_some(rate))
}

/// Formats a rate the way [`parse_rate`] reads it.
pub fn format_rate(rate: Option<u64>) -> String {
    match rate {
        None => "off".to_string(),
        Some(r) if r % (1 << 30) == 0 => format!("{}G", r >> 30),
        Some(r) if r % (1 << 20) == 0 => format!("{}M", r >> 20),
        Some(r) if r % (1 << 10) == 0 => format!("{}K", r >> 10),
        Some(r) => format!("{r}"),
    }
}

/// A shared token bucket; `rate == 0` means no cap.
pub struct RateCap {
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Bytes that may be sent now; negative while callers are paying a debt.
    tokens: f64,
    last: Instant,
}

impl RateCap {
    pub fn new(rate: Option<u64>) -> Self {
        RateCap {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    pub fn get(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|&r| r > 0)
    }

    /// Changes the cap; takes effect within [`RATE_MAX_NAP`] for waiting callers.
    pub fn set(&self, rate: Option<u64>) {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.tokens = 0.0;
        b.last = Instant::now();
        self.rate.store(rate.unwrap_or(0), Ordering::Relaxed);
    }

    /// Waits until `n` more bytes (at most [`RATE_SLICE`]) may pass.
    pub fn acquire(&self, n: usize) {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        let mut wait = {
            let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let burst = (rate as f64 / 20.0).max(RATE_SLICE as f64);
            let refill = now.duration_since(b.last).as_secs_f64() * rate as f64;
            b.tokens = (b.tokens + refill).min(burst) - n as f64;
            b.last = now;
            if b.tokens >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-b.tokens / rate as f64)
        };
        // Pay the debt in naps, giving up early if the cap is lifted.
        while !wait.is_zero() && self.rate.load(Ordering::Relaxed) != 0 {
            let nap = wait.min(RATE_MAX_NAP);
            thread::sleep(nap);
            wait -= nap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("off"), Ok(None));
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("1000"), Ok(Some(1000)));
        assert_eq!(parse_rate("500K"), Ok(Some(500 * 1024)));
        assert_eq!(parse_rate("10M"), Ok(Some(10 << 20)));
        assert_eq!(parse_rate("10m"), Ok(Some(10 << 20)));
        assert_eq!(parse_rate("1.5MB/s"), Ok(Some(3 << 19)));
        assert_eq!(parse_rate("1G"), Ok(Some(1 << 30)));
        for bad in ["", "fast", "-1M", "10X", "1e30", "NaN", "M"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        for r in [None, Some(1), Some(2048), Some(10 << 20), Some(3 << 30)] {
            assert_eq!(parse_rate(&format_rate(r)), Ok(r));
        }
    }

    #[test]
    fn unlimited_never_waits_and_cap_is_kept_on_average() {
        let unlimited = RateCap::new(None);
        let t = Instant::now();
        for _ in 0..10_000 {
            unlimited.acquire(RATE_SLICE);
        }
        assert!(t.elapsed() < Duration::from_secs(1));

        // 4 MiB/s for 1 MiB after the first burst: about 0.25 s, never less
        // than the debt allows (the bucket starts empty).
        let capped = RateCap::new(Some(4 << 20));
        let t = Instant::now();
        for _ in 0..16 {
            capped.acquire(RATE_SLICE);
        }
        let secs = t.elapsed().as_secs_f64();
        assert!(secs >= 0.2, "1 MiB at 4 MiB/s took only {secs} s");
    }
}
