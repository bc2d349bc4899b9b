//! Sockets, the layer below connections: the transport seam (`Stream`: TLS
//! 1.3 between peers, plain TCP for the tracker's text protocol), TLS
//! itself, stopping threads blocked on streams, bandwidth caps, and the
//! Linux system calls std lacks. Nothing here knows a protocol line or a
//! server (those are `protocol::conn` and `server`).

pub mod punch;
pub mod rate;
pub mod splice;
pub mod stop;
pub mod sys;
pub mod tls;
pub mod transport;
