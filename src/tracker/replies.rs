//! The bound on large replies being written at once: a client that asks
//! for a big `SEARCH` listing and reads it slowly holds its reply (at most
//! `TRACKER_REPLY_BYTES`) until it is sent or its write deadline passes.
//! At most [`TRACKER_LARGE_REPLIES`] such replies are held in all, and
//! [`TRACKER_LARGE_REPLIES_PER_IP`] for one address, so one host cannot
//! take every place; a request over the bound gets `ERR busy`.
//!
//! Invariant: `in_flight.0` is the sum of `in_flight.1`'s counts, and each
//! count is that of the live [`LargeReply`]s of its address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::bounds::{TRACKER_LARGE_REPLIES, TRACKER_LARGE_REPLIES_PER_IP};
use crate::sync::LockExt;

/// The large replies being written now, in all and by address.
#[derive(Default)]
pub struct LargeReplies {
    in_flight: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One place among the [`LargeReplies`], given back when dropped.
pub struct LargeReply<'a> {
    of: &'a LargeReplies,
    ip: IpAddr,
}

impl LargeReplies {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        // Each change is one count up or down: a poisoned lock is whole.
        self.in_flight.locked()
    }

    /// A place for a large reply to `ip`, if one is free.
    pub fn take(&self, ip: IpAddr) -> Option<LargeReply<'_>> {
        let mut guard = self.lock();
        let (total, by_ip) = &mut *guard;
        let mine = by_ip.entry(ip).or_default();
        if *total >= TRACKER_LARGE_REPLIES || *mine >= TRACKER_LARGE_REPLIES_PER_IP {
            if *mine == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(LargeReply { of: self, ip })
    }
}

impl Drop for LargeReply<'_> {
    fn drop(&mut self) {
        let mut guard = self.of.lock();
        let (total, by_ip) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(mine) = by_ip.get_mut(&self.ip) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most `TRACKER_LARGE_REPLIES_PER_IP` for one address and
    /// `TRACKER_LARGE_REPLIES` in all; a finished one gives its place back.
    #[test]
    fn large_replies_are_bounded_in_all_and_per_address() {
        let large = LargeReplies::default();
        let ip = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        let one: Vec<_> = (0..TRACKER_LARGE_REPLIES_PER_IP)
            .map(|_| large.take(ip(0)).expect("room"))
            .collect();
        assert!(large.take(ip(0)).is_none(), "one too many from one address");
        let hosts = TRACKER_LARGE_REPLIES / TRACKER_LARGE_REPLIES_PER_IP;
        let rest: Vec<_> = (1..hosts as u32)
            .flat_map(|n| (0..TRACKER_LARGE_REPLIES_PER_IP).map(move |_| n))
            .map(|n| large.take(ip(n)).expect("room"))
            .collect();
        assert!(large.take(ip(999)).is_none(), "one too many in all");
        drop(one);
        assert!(large.take(ip(999)).is_some());
        drop(rest);
        assert_eq!(large.lock().0, 0);
        assert!(large.lock().1.is_empty());
    }
}
