//! Introductions for a hole punch (`PUNCH <peer id> <port>`): the tracker
//! tells a peer that holds a control connection where the asker is (the
//! IP the question came from, with the port the asker names: the one it
//! connects from), and tells the asker where that peer is (the IP its
//! control connection comes from, with the port its `LISTEN` named); both
//! then connect to each other at once. The tracker carries no
//! byte of the connection that results.
//!
//! Invariant: at most [`PUNCHES`] introductions within the last
//! [`PUNCH_TIME`], and [`PUNCH_PER_PEER`] with one peer id at either end;
//! a refused one sends nothing to anyone.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::control::{Listeners, NotSent};
use crate::bounds::{PUNCHES, PUNCH_PER_PEER, PUNCH_TIME};
use crate::identity::PeerId;
use crate::protocol::conn::BUSY;
use crate::protocol::nat_msg::ControlLine;
use crate::protocol::Reply;
use crate::sync::LockExt;

/// The refusal of `PUNCH` to a peer with no control connection here.
pub const NOT_LISTENING: &str = "that peer holds no control connection here";

/// The refusal of `PUNCH` to the asker's own id.
pub const NOT_TO_ITSELF: &str = "cannot punch a peer to itself";

/// The introductions made lately.
#[derive(Default)]
pub struct Punches {
    /// When, who asked, and whom it was for; oldest first.
    recent: Mutex<Vec<(Instant, PeerId, PeerId)>>,
}

impl Punches {
    /// `PUNCH <target> <port>` from `asker`, whose question came from
    /// `from`: `OK <ip>:<port>` (where the target listens), once the
    /// target has been told `PUNCH <from ip>:<port>`.
    pub fn introduce(
        &self,
        asker: PeerId,
        from: SocketAddr,
        port: u16,
        target: PeerId,
        listeners: &Listeners,
    ) -> Reply {
        if asker == target {
            return Reply::err(NOT_TO_ITSELF);
        }
        let Some(listens) = listeners.listens(&target) else {
            return Reply::err(NOT_LISTENING);
        };
        let mut recent = self.recent.locked();
        recent.retain(|(at, _, _)| at.elapsed() < PUNCH_TIME);
        let with = |id: PeerId| {
            recent
                .iter()
                .filter(|(_, a, t)| *a == id || *t == id)
                .count()
        };
        if recent.len() >= PUNCHES
            || with(asker) >= PUNCH_PER_PEER
            || with(target) >= PUNCH_PER_PEER
        {
            return Reply::err(BUSY);
        }
        let asker_at = SocketAddr::new(from.ip(), port);
        match listeners.send(&target, ControlLine::Punch(asker_at)) {
            Ok(()) => {
                recent.push((Instant::now(), asker, target));
                Reply::ok(listens.to_string())
            }
            Err(NotSent::NotListening) => Reply::err(NOT_LISTENING),
            Err(NotSent::Busy) => Reply::err(BUSY),
        }
    }

    /// Introductions made within the last [`PUNCH_TIME`].
    pub fn recent(&self) -> usize {
        let recent = self.recent.locked();
        recent
            .iter()
            .filter(|(at, _, _)| at.elapsed() < PUNCH_TIME)
            .count()
    }
}
