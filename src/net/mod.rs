//! Everything that touches a socket below the protocol: the accept loop
//! shared by every server, bandwidth caps, and the Linux system calls std
//! does not expose.

pub mod accept;
pub mod rate;
pub mod sys;
