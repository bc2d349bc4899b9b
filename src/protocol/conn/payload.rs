//! Payloads on a [`Connection`]: reading them exactly (through the
//! download cap, at a minimum rate over each progress window) and writing
//! a header with its payload (through the upload cap, with progress-based
//! write deadlines), so a peer that trickles or stops reading costs
//! bounded time.
//!
//! What is sent is a [`Payload`]: a range of an open file or bytes in
//! memory. Connections know nothing of how files are stored.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::*;

/// The bytes of one reply's payload.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// `len` bytes of `file` from `offset`: sent straight from the page
    /// cache (`sendfile`) on plain TCP, read into a buffer on TLS.
    File {
        file: &'a File,
        offset: u64,
        len: usize,
    },
    /// Bytes already in memory.
    Bytes(&'a [u8]),
}

impl Payload<'_> {
    pub fn len(&self) -> usize {
        match self {
            Payload::File { len, .. } => *len,
            Payload::Bytes(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Connection {
    /// Reads an `OK <len>` header (with `len <= max`) and returns `len`.
    pub fn read_payload_header(&mut self, max: usize) -> Result<usize> {
        let text = self.read_reply()?;
        Ok(parse_payload_len(&text, max)?)
    }

    /// Fills `out` exactly from the buffer and then the socket.
    pub fn read_payload(&mut self, out: &mut [u8]) -> Result<()> {
        self.read_payload_limited(out, &RateCap::new(None))
    }

    /// Like [`read_payload`](Self::read_payload), metering every byte of
    /// the payload through `limit`. Under a cap it reads in slices small
    /// enough that every connection takes data several times a second, so
    /// the sender never sees a stalled reader.
    ///
    /// The payload's first bytes may already be in the buffer, read with
    /// the header line (up to [`READ_BUF`] on plain TCP, where that let 64
    /// KiB of every 512 KiB chunk past the cap: 14% over it). They are
    /// metered too, before they are handed over, so the cap's debt holds
    /// the next read back.
    pub fn read_payload_limited(&mut self, out: &mut [u8], limit: &RateCap) -> Result<()> {
        self.size_recv_buffer(limit.get());
        let buffered = (self.end - self.start).min(out.len());
        if buffered > 0 {
            limit.acquire(buffered);
        }
        out[..buffered].copy_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        let rest = &mut out[buffered..];
        if rest.is_empty() {
            return Ok(());
        }
        let slice = match limit.get() {
            Some(rate) => {
                usize::try_from(rate / 16).map_or(RATE_SLICE, |s| s.clamp(1024, RATE_SLICE))
            }
            None => rest.len(),
        };
        let mut progress = Progress::new();
        for part in rest.chunks_mut(slice) {
            limit.acquire(part.len());
            // Our own cap's wait is not the sender's slowness.
            progress.restart();
            self.read_exact_progressing(part, &mut progress)?;
        }
        Ok(())
    }

    /// Under a download cap, sizes the socket's receive buffer for the cap
    /// and the connection's round trip (see [`rate::recv_buffer`]),
    /// bounding how far the bytes on the wire run ahead of the cap's reads;
    /// again when the cap changes. A lifted cap leaves the largest buffer
    /// the kernel grants (Linux does not grow a buffer once it was set).
    ///
    /// The round trip is the one the kernel knows at the first capped
    /// payload: later, the cap itself inflates it (our full buffer holds
    /// back the sender's data, and with it the acknowledgements of our
    /// requests; sizing on that estimate let the wire run 4.5% ahead).
    fn size_recv_buffer(&mut self, cap: Option<u64>) {
        let cap = cap.unwrap_or(0);
        if cap == self.recv_sized_for {
            return;
        }
        let socket = self.stream.socket();
        let rtt = match self.recv_rtt {
            Some(rtt) => rtt,
            None => match sys::round_trip(socket) {
                Ok(Some(rtt)) => *self.recv_rtt.insert(rtt),
                _ => return,
            },
        };
        let Some(max) = sys::recv_buffer_max() else {
            return;
        };
        let bytes = match rate::recv_buffer(cap, rtt, max) {
            Some(bytes) if cap > 0 => bytes,
            // Never sized: the kernel's own sizing goes on.
            _ if self.recv_sized_for == 0 => return,
            _ => max,
        };
        self.recv_sized_for = cap;
        if let Err(e) = sys::set_recv_buffer(socket, bytes) {
            log::debug!("cannot size the receive buffer of {}: {e}", self.peer);
        }
    }

    /// Fills `out` from the stream, failing if a [`PROGRESS_WINDOW`] passes
    /// in which less than `MIN_PAYLOAD_RATE` per second arrived (and the
    /// payload is not done): a sender trickling a byte a second is given up
    /// on within seconds, not after hours.
    fn read_exact_progressing(&mut self, mut out: &mut [u8], p: &mut Progress) -> Result<()> {
        let window_bytes = MIN_PAYLOAD_RATE * PROGRESS_WINDOW.as_secs().max(1);
        while !out.is_empty() {
            let left = p.window_left();
            if left.is_zero() {
                if p.bytes < window_bytes {
                    return Err(Error::Timeout("payload bytes at the minimum rate"));
                }
                p.restart();
                continue;
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(out) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => {
                    p.bytes += n as u64;
                    out = &mut out[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(e.kind()) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    /// Sends `header`, then `payload`, metered through `limit`, in slices of
    /// [`RATE_SLICE`]. On plain TCP a file range goes straight from the page
    /// cache (`sendfile`, the header with `MSG_MORE` so it shares a segment
    /// with the payload); otherwise (TLS) each slice is read into a buffer
    /// the connection keeps, the first before the header promises the
    /// payload, and the header goes out in one write with the first slice
    /// (one TLS record, not a record of its own). So a connection holds one
    /// slice, whatever chunk size a remote manifest declared (issue 20:
    /// whole 16 MiB chunks cost a re-sharing peer 16 MiB per slow reader,
    /// 781 MiB with 48). Two bounds keep a
    /// client that reads slowly or not at all from holding the connection: no
    /// slice may go `IO_TIMEOUT` without completing, and the whole reply must
    /// be taken within `IO_TIMEOUT + len / MIN_READ_RATE` (time spent waiting
    /// on our own upload cap not counted). If the file turns out shorter,
    /// fails: the caller must close, as the header may have promised bytes
    /// that cannot be sent.
    pub fn send_payload(
        &mut self,
        header: &[u8],
        payload: Payload<'_>,
        limit: &RateCap,
    ) -> Result<()> {
        let len = payload.len();
        let zero_copy = matches!(payload, Payload::File { .. }) && self.stream.as_tcp().is_some();
        let mut buf = std::mem::take(&mut self.send_buf);
        // The slice `[sent, sent + n)` of a file payload, into `buf`.
        let read_slice = |buf: &mut Vec<u8>, sent: usize, n: usize| -> Result<()> {
            if let Payload::File { file, offset, .. } = payload {
                buf.resize(n, 0);
                file.read_exact_at(&mut buf[..n], offset + sent as u64)?;
            }
            Ok(())
        };
        if !zero_copy {
            if let Err(e) = read_slice(&mut buf, 0, RATE_SLICE.min(len)) {
                self.send_buf = buf;
                return Err(e);
            }
        }
        let started = Instant::now();
        let mut reply_deadline =
            started + IO_TIMEOUT + Duration::from_secs(len as u64 / MIN_READ_RATE);
        let result = (|| {
            let mut head = header;
            if let (Some(tcp), true) = (self.stream.as_tcp(), zero_copy) {
                self.bound_next_write(started + IO_TIMEOUT, reply_deadline)?;
                sys::send_more(tcp, head).map_err(write_error)?;
                head = &[];
            }
            let mut sent = 0;
            while sent < len {
                let n = RATE_SLICE.min(len - sent);
                let waited = Instant::now();
                limit.acquire(n);
                let now = Instant::now();
                reply_deadline += now - waited;
                self.bound_next_write(now + IO_TIMEOUT, reply_deadline)?;
                match (self.stream.as_tcp(), payload) {
                    (Some(tcp), Payload::File { file, offset, .. }) if zero_copy => {
                        sys::send_file(tcp, file, offset + sent as u64, n).map_err(write_error)?
                    }
                    (_, Payload::Bytes(bytes)) => {
                        self.write_parts(head, &bytes[sent..sent + n], reply_deadline)?;
                    }
                    (_, Payload::File { .. }) => {
                        if sent > 0 {
                            read_slice(&mut buf, sent, n)?;
                        }
                        self.write_parts(head, &buf[..n], reply_deadline)?;
                    }
                }
                head = &[];
                sent += n;
            }
            if !head.is_empty() {
                self.write_parts(head, &[], reply_deadline)?;
            }
            self.stream.set_write_timeout(Some(WRITE_CALL_TIMEOUT))?;
            Ok(())
        })();
        self.send_buf = buf;
        result
    }

    /// Sets the socket's write timeout so the next write ends by
    /// `stall_deadline` and `reply_deadline`. A quarter of the stall budget
    /// per system call: a slice may take two calls (one filling the socket
    /// buffer, one finding it full), and a `sendfile` into a full socket may
    /// wait out its timeout twice (measured: a client that never reads held
    /// the connection 20 s with half the budget per call).
    fn bound_next_write(&self, stall_deadline: Instant, reply_deadline: Instant) -> Result<()> {
        let now = Instant::now();
        let stall = stall_deadline.saturating_duration_since(now) / 4;
        let reply = reply_deadline.saturating_duration_since(now);
        let timeout = stall.min(reply);
        if timeout.is_zero() {
            return Err(Error::Timeout("the other side to read"));
        }
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Writes `bytes` whole (one or more lines, or a header and a payload),
    /// under the same bounds as [`send_payload`](Self::send_payload): progress at
    /// least every `IO_TIMEOUT`, all of it within `IO_TIMEOUT + len /
    /// MIN_READ_RATE`. A client reading a few bytes now and then cannot hold
    /// a long reply (a manifest, a search listing) open for ever.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_with_payload(bytes, &[])
    }

    /// Writes all of `head` then `body` as one gathered write (one `writev`
    /// on TCP; on TLS, records filled across both, so a header does not
    /// travel in a record and segment of its own), the first call under the
    /// write timeout already set, every later one bounded by
    /// [`bound_next_write`](Self::bound_next_write) (progress at least every
    /// `IO_TIMEOUT`, all by `reply_deadline`). Returns how many write calls
    /// it took.
    fn write_parts(&mut self, head: &[u8], body: &[u8], reply_deadline: Instant) -> Result<usize> {
        let mut stall_deadline = Instant::now() + IO_TIMEOUT;
        let mut calls = 0;
        let mut parts = [IoSlice::new(head), IoSlice::new(body)];
        let mut parts = &mut parts[..];
        IoSlice::advance_slices(&mut parts, 0);
        while !parts.is_empty() {
            if calls > 0 {
                self.bound_next_write(stall_deadline, reply_deadline)?;
            }
            match self.stream.write_vectored(parts) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    IoSlice::advance_slices(&mut parts, n);
                    stall_deadline = Instant::now() + IO_TIMEOUT;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(write_error(e)),
            }
            calls += 1;
        }
        if self.stream.wants_write() {
            // TLS kept what the socket did not take: it must leave too, by
            // the same bounds. (Usually the write above sent it all.)
            self.bound_next_write(stall_deadline, reply_deadline)?;
            self.stream.flush().map_err(write_error)?;
            calls += 1;
        }
        Ok(calls)
    }

    /// Writes `header` then `payload` in one gathered write, under the
    /// bounds of [`write_all`](Self::write_all) for both together.
    pub fn write_with_payload(&mut self, header: &[u8], payload: &[u8]) -> Result<()> {
        let len = (header.len() + payload.len()) as u64;
        let reply_deadline = Instant::now() + IO_TIMEOUT + Duration::from_secs(len / MIN_READ_RATE);
        // The first call runs under the default WRITE_CALL_TIMEOUT, which is
        // what a fresh budget gives, so the common case (a reply that fits
        // the socket buffer) needs no extra system call.
        if self.write_parts(header, payload, reply_deadline)? > 1 {
            self.stream.set_write_timeout(Some(WRITE_CALL_TIMEOUT))?;
        }
        Ok(())
    }
}

/// Bytes received in the current progress window of a payload.
struct Progress {
    since: Instant,
    bytes: u64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            since: Instant::now(),
            bytes: 0,
        }
    }

    fn restart(&mut self) {
        *self = Progress::new();
    }

    fn window_left(&self) -> Duration {
        PROGRESS_WINDOW.saturating_sub(self.since.elapsed())
    }
}

fn write_error(e: io::Error) -> Error {
    match e.kind() {
        k if is_timeout(k) => Error::Timeout("the other side to read"),
        _ => Error::Io(e),
    }
}
