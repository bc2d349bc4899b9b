//! Bandwidth caps: a token bucket shared by every connection of one direction
//! (upload or download), metered in slices of at most [`RATE_SLICE`] bytes so the
//! rate stays smooth. The cap can be changed or lifted while transfers run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bounds::{RATE_MAX_NAP, RATE_RECV_MIN, RATE_RECV_RTTS, RATE_SLICE};
use crate::sync::LockExt;

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

/// The receive buffer for a connection downloading under `rate` with a
/// round trip of `rtt`: [`RATE_RECV_RTTS`] round trips of the whole rate,
/// at least [`RATE_RECV_MIN`]. `None` if that is more than the kernel grants
/// (`kernel_max`): a buffer clamped below what the rate needs would slow
/// the download, and the kernel's own sizing serves better then.
pub fn recv_buffer(rate: u64, rtt: Duration, kernel_max: usize) -> Option<usize> {
    let want = rate as f64 * rtt.as_secs_f64() * f64::from(RATE_RECV_RTTS);
    Some((want as usize).max(RATE_RECV_MIN)).filter(|&b| b <= kernel_max)
}

/// A shared token bucket; `rate == 0` means no cap.
pub struct RateCap {
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
    /// Bytes metered while capped, in all.
    metered: AtomicU64,
}

/// The bucket's arithmetic, apart from any clock: callers pass the time, so
/// tests can run it on a simulated one.
///
/// A taker of `n` bytes is let through once the bucket has paid for them:
/// at once if it holds `n` tokens, else after the debt it leaves is repaid
/// at the rate. Tokens accrue at the rate up to [`burst`] bytes, so over any
/// time `t` at most `rate * t + burst(rate)` bytes are let through.
#[derive(Debug, Clone)]
struct Bucket {
    /// Bytes that may pass now; negative while takers are paying a debt.
    tokens: f64,
    last: Instant,
}

/// Most bytes a capped direction may take at once after being idle: a
/// twentieth of a second's worth, at least one slice.
fn burst(rate: u64) -> f64 {
    (rate as f64 / 20.0).max(RATE_SLICE as f64)
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            tokens: 0.0,
            last: now,
        }
    }

    /// Accrues tokens for the time since the last call, at `rate`.
    fn refill(&mut self, now: Instant, rate: u64) {
        if now > self.last {
            let earned = now.duration_since(self.last).as_secs_f64() * rate as f64;
            self.tokens = (self.tokens + earned).min(burst(rate));
            self.last = now;
        }
    }

    /// Takes `n` bytes at `now` under `rate` (non-zero); returns how long
    /// the taker must wait before they may pass.
    fn take(&mut self, now: Instant, rate: u64, n: usize) -> Duration {
        self.refill(now, rate);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate as f64)
        }
    }

    /// The rate changes from `old` to `new` at `now`: what was earned at
    /// the old rate is kept up to the new burst, and a debt is kept whole,
    /// since the takers who ran it up are already on their way.
    /// Without a cap on either side, the bucket starts afresh (empty).
    fn change(&mut self, now: Instant, old: u64, new: u64) {
        if old > 0 && new > 0 {
            self.refill(now, old);
            self.tokens = self.tokens.min(burst(new));
        } else {
            self.tokens = 0.0;
        }
        self.last = now;
    }
}

impl RateCap {
    pub fn new(rate: Option<u64>) -> Self {
        RateCap {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            bucket: Mutex::new(Bucket::new(Instant::now())),
            metered: AtomicU64::new(0),
        }
    }

    pub fn get(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|&r| r > 0)
    }

    /// Changes the cap; takes effect within [`RATE_MAX_NAP`] for waiting callers.
    pub fn set(&self, rate: Option<u64>) {
        let mut b = self.bucket.locked();
        let new = rate.unwrap_or(0);
        let old = self.rate.swap(new, Ordering::Relaxed);
        b.change(Instant::now(), old, new);
    }

    /// Bytes that have passed through [`acquire`](Self::acquire) while a
    /// cap was set.
    pub fn metered(&self) -> u64 {
        self.metered.load(Ordering::Relaxed)
    }

    /// Waits until `n` more bytes may pass (callers meter at most
    /// [`RATE_SLICE`] at a time, so that the wait stays short).
    pub fn acquire(&self, n: usize) {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        self.metered.fetch_add(n as u64, Ordering::Relaxed);
        let mut wait = {
            let mut b = self.bucket.locked();
            b.take(Instant::now(), rate, n)
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
    fn a_capped_connection_buffers_two_round_trips_of_the_cap() {
        let max = 4 << 20;
        let ms = Duration::from_millis;
        // Loopback and LANs: the floor.
        assert_eq!(
            recv_buffer(50 << 20, Duration::from_micros(50), max),
            Some(RATE_RECV_MIN)
        );
        assert_eq!(recv_buffer(6 << 20, ms(1), max), Some(RATE_RECV_MIN));
        // 20 MiB/s over 50 ms: 2 MiB, one connection alone can keep to it.
        assert_eq!(recv_buffer(20 << 20, ms(50), max), Some(2 << 20));
        // More than the kernel grants: left to the kernel.
        assert_eq!(recv_buffer(50 << 20, ms(50), max), None);
        assert_eq!(recv_buffer(6 << 20, ms(20), 208 << 10), None);
    }

    #[test]
    fn unlimited_meters_nothing() {
        let unlimited = RateCap::new(None);
        for _ in 0..10_000 {
            unlimited.acquire(RATE_SLICE);
        }
        assert_eq!(unlimited.metered(), 0);
        let capped = RateCap::new(Some(1 << 40));
        capped.acquire(1000);
        capped.acquire(24);
        assert_eq!(capped.metered(), 1024);
    }

    /// A deterministic stream of numbers in `0..bound`.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    /// Runs `takers` callers against one bucket on a simulated clock for
    /// `secs`, each taking slices of 1 KiB to `RATE_SLICE` bytes and, with
    /// `idle`, now and then pausing up to half a second (so the bucket
    /// fills). Calls reach the bucket in time order, as the mutex makes them.
    /// Returns when each take passed (seconds from the start) and its size.
    fn simulate(rate: u64, takers: usize, secs: f64, idle: bool, seed: u64) -> Vec<(f64, u64)> {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut rng = Lcg(seed);
        let mut bucket = Bucket::new(t0);
        let mut next = vec![0.0f64; takers];
        let mut passed = Vec::new();
        loop {
            let (k, &now) = next
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one taker");
            if now >= secs {
                break;
            }
            let n = 1024 + rng.below(RATE_SLICE as u64 - 1023);
            let pass = now + bucket.take(at(now), rate, n as usize).as_secs_f64();
            passed.push((pass, n));
            let pause = match rng.below(20) {
                0 if idle => rng.below(500_000),
                _ => rng.below(300),
            };
            next[k] = pass + pause as f64 / 1e6;
        }
        passed.sort_by(|a, b| a.0.total_cmp(&b.0));
        passed
    }

    #[test]
    fn never_more_than_the_rate_and_one_burst_in_any_interval() {
        for (rate, takers, seed) in [
            (6u64 << 20, 8, 1),
            (20 << 20, 3, 2),
            (50 << 20, 1, 3),
            (100 << 10, 6, 4),
        ] {
            let passed = simulate(rate, takers, 3.0, true, seed);
            let limit = |secs: f64| rate as f64 * secs + burst(rate) + 1.0;
            for (i, &(a, _)) in passed.iter().enumerate() {
                let mut bytes = 0.0;
                for &(b, n) in &passed[i..] {
                    bytes += n as f64;
                    assert!(
                        bytes <= limit(b - a),
                        "rate {rate}, {takers} takers: {bytes} bytes passed in {} s",
                        b - a
                    );
                }
            }
        }
    }

    #[test]
    fn hungry_takers_get_the_whole_rate() {
        for (rate, takers, seed) in [(6u64 << 20, 8, 5), (20 << 20, 2, 6), (50 << 20, 1, 7)] {
            let secs = 10.0;
            let passed = simulate(rate, takers, secs, false, seed);
            let bytes: u64 = passed.iter().filter(|p| p.0 <= secs).map(|p| p.1).sum();
            let ratio = bytes as f64 / (rate as f64 * secs);
            assert!((0.99..=1.0).contains(&ratio), "rate {rate}: {ratio}");
        }
    }

    #[test]
    fn the_first_bytes_wait_and_an_idle_bucket_holds_one_burst() {
        let rate = 10 << 20;
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        // It starts empty: the first slice waits for its own bytes.
        let wait = b.take(t0, rate, RATE_SLICE);
        assert_eq!(
            wait,
            Duration::from_secs_f64(RATE_SLICE as f64 / rate as f64)
        );
        // After a long idle time, one burst passes at once, and no more.
        let later = t0 + Duration::from_secs(60);
        let burst = burst(rate) as usize;
        assert_eq!(b.take(later, rate, burst), Duration::ZERO);
        assert!(b.take(later, rate, 1) > Duration::ZERO);
    }

    #[test]
    fn a_changed_cap_keeps_the_debt_and_a_lifted_one_forgets_it() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        // 1 MiB at 1 MiB/s: a second of debt.
        assert_eq!(b.take(t0, 1 << 20, 1 << 20), Duration::from_secs(1));
        // Raised to 2 MiB/s after a quarter of it: 3/4 MiB left to repay
        // at the new rate before anyone else passes.
        let t1 = t0 + Duration::from_millis(250);
        b.change(t1, 1 << 20, 2 << 20);
        let wait = b.take(t1, 2 << 20, 0);
        assert!((wait.as_secs_f64() - 0.375).abs() < 1e-9, "{wait:?}");
        // Lifted and capped again: the bucket starts afresh.
        b.change(t1, 2 << 20, 0);
        b.change(t1, 0, 1 << 20);
        assert_eq!(b.take(t1, 1 << 20, 0), Duration::ZERO);
    }
}
