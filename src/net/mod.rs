//! Everything below the protocol: the transport seam (`Stream`: TLS 1.3
//! between peers, plain TCP for the tracker's text protocol), TLS itself, stopping threads blocked on streams, the accept loop shared by
//! every server, bandwidth caps, and the Linux system calls std lacks.

pub mod accept;
pub mod rate;
pub mod slots;
pub mod stop;
pub mod sys;
pub mod tls;
pub mod transport;
