//! `StopSignal`: one flag that many threads check, plus the streams they
//! are blocked on, so that stopping (a cancelled download, a server shut
//! down) both tells the threads and interrupts their I/O. Threads register
//! their stream with [`StopSignal::guard`] and drop the guard when done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::transport::Interrupter;
use crate::sync::{LockExt, Unpoisoned};

#[derive(Default)]
pub struct StopSignal {
    stopped: AtomicBool,
    /// Registered streams; `None` marks a free slot. Slots are set and
    /// cleared whole, so a poisoned list is still valid.
    streams: Mutex<Vec<Option<Interrupter>>>,
    /// Notified on stop, for [`wait_timeout`](Self::wait_timeout).
    woken: Condvar,
}

impl StopSignal {
    pub fn new() -> Arc<StopSignal> {
        Arc::new(StopSignal::default())
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sets the flag and interrupts every registered stream (and every
    /// stream registered later). Idempotent.
    pub fn stop(&self) {
        let streams = self.streams.locked();
        self.stopped.store(true, Ordering::Release);
        for s in streams.iter().flatten() {
            s.interrupt();
        }
        self.woken.notify_all();
    }

    /// Sleeps at most `timeout`, waking at once on a stop; returns whether
    /// stopped.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let streams = self.streams.locked();
        let _ = self
            .woken
            .wait_timeout_while(streams, timeout, |_| !self.is_stopped())
            .unpoisoned();
        self.is_stopped()
    }

    /// Registers `stream` until the guard is dropped. If already stopped,
    /// interrupts it at once, so a thread that registers late cannot block.
    pub fn guard(self: &Arc<Self>, stream: Interrupter) -> StopGuard {
        let mut streams = self.streams.locked();
        if self.is_stopped() {
            stream.interrupt();
        }
        let slot = match streams.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                streams.push(None);
                streams.len() - 1
            }
        };
        streams[slot] = Some(stream);
        StopGuard {
            signal: Arc::clone(self),
            slot,
        }
    }
}

/// A registered stream; deregistered when dropped.
pub struct StopGuard {
    signal: Arc<StopSignal>,
    slot: usize,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.signal.streams.locked()[self.slot] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::transport::Stream;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn stopping_interrupts_registered_and_late_streams() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut early = Stream::from(TcpStream::connect(addr).expect("connect"));
        let _server_early = listener.accept().expect("accept");
        let signal = StopSignal::new();
        let _guard = signal.guard(early.interrupter().expect("clone"));
        assert!(!signal.wait_timeout(Duration::from_millis(1)));
        signal.stop();
        assert!(signal.is_stopped() && signal.wait_timeout(Duration::from_secs(60)));
        let mut buf = [0u8; 1];
        // Interrupted: the blocked read returns at once with end of stream.
        assert_eq!(early.read(&mut buf).expect("read"), 0);

        let mut late = Stream::from(TcpStream::connect(addr).expect("connect"));
        let _server_late = listener.accept().expect("accept");
        let _late_guard = signal.guard(late.interrupter().expect("clone"));
        assert_eq!(late.read(&mut buf).expect("read"), 0);
    }
}
