//! The tracker calls for peers behind NAT (see `protocol::nat_msg`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{Call, TrackerClient};
use crate::bounds::{CONTROL_SILENCE, TRACKER_DEADLINE};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::protocol::codec::ParseError;
use crate::protocol::nat_msg::{ControlLine, Reflection, Token};
use crate::protocol::{Reply, TrackerRequest};

/// A control connection held open to the tracker (`LISTEN`): the tracker
/// writes a line, this peer answers it.
pub struct Control {
    call: Call,
    /// What the tracker said it sees (`listening <ip>:<port>`).
    pub greeting: String,
}

impl TrackerClient {
    /// `WHOAMI <listen port>`: the address the tracker sees this peer at,
    /// and whether it reached our chunk server there.
    pub fn whoami(&self) -> Result<Reflection> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let req = TrackerRequest::WhoAmI {
            port: Some(self.listen_port),
        };
        call.send(&req.encode())?;
        let reflection = Reflection::parse(&call.reply()?)?;
        self.ports
            .learn(call.conn.local_addr()?, reflection.observed);
        Ok(reflection)
    }

    /// `LISTEN <listen port> <local port>`: opens a control connection
    /// (without the local port to a tracker older than version 3).
    pub fn listen(&self) -> Result<Control> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let local = call.conn.local_addr()?;
        let req = TrackerRequest::Listen {
            port: self.listen_port,
            from: (call.version >= 3).then_some(local.port()),
        };
        call.send(&req.encode())?;
        let greeting = call.reply()?;
        if let Some(seen) = greeting
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
        {
            self.ports.learn(local, seen);
        }
        Ok(Control { call, greeting })
    }

    /// Whether the NAT in front of this peer was seen to change the port
    /// of a connection to the tracker: a hole punch (which connects from
    /// a port it names) then cannot work from here. Until a `WHOAMI` or
    /// `LISTEN` answer has shown it (a download may start before the
    /// `reach` thread's first question is answered), a plain `WHOAMI`
    /// (reflection only, no dial-back) asks, once; if that fails, the NAT
    /// is taken to keep ports.
    pub fn nat_changes_ports(&self) -> bool {
        if let Some(changed) = self.ports.known() {
            return changed;
        }
        let reflected = self.connect(TRACKER_DEADLINE).and_then(|mut call| {
            call.send(&TrackerRequest::WhoAmI { port: None }.encode())?;
            let reflection = Reflection::parse(&call.reply()?)?;
            self.ports
                .learn(call.conn.local_addr()?, reflection.observed);
            Ok(())
        });
        if let Err(e) = reflected {
            // Not asked again: taken to keep ports until an answer shows.
            log::debug!("asking the tracker where it sees this peer: {e}");
            self.ports.known.store(true, Ordering::Release);
        }
        self.ports.known().unwrap_or(false)
    }
}

/// What the tracker's replies showed of the NAT in front (see
/// [`TrackerClient::nat_changes_ports`]).
#[derive(Default)]
pub struct PortsSeen {
    /// Whether an answer showed it yet, and whether it changed the port.
    known: AtomicBool,
    changed: AtomicBool,
}

impl PortsSeen {
    fn known(&self) -> Option<bool> {
        let known = self.known.load(Ordering::Acquire);
        known.then(|| self.changed.load(Ordering::Relaxed))
    }

    /// A connection from `local` came to the tracker from `seen`: the
    /// latest says.
    fn learn(&self, local: SocketAddr, seen: SocketAddr) {
        let changed = local.port() != seen.port();
        let before = self.known();
        self.changed.store(changed, Ordering::Relaxed);
        self.known.store(true, Ordering::Release);
        if before != Some(changed) {
            log::info!(
                "the NAT in front of this peer {} ports",
                match changed {
                    true => "changes",
                    false => "keeps",
                }
            );
        }
    }
}

impl Control {
    /// The tracker's next line, or `None` once `until` has come without
    /// one (the caller then closes: a line begun is not waited for). A
    /// line must come within [`CONTROL_SILENCE`] (the tracker pings more
    /// often than that); a longer silence is an error.
    pub fn next_by(&mut self, until: Instant) -> Result<Option<ControlLine>> {
        let now = Instant::now();
        let silent = now + CONTROL_SILENCE;
        let line = self
            .call
            .conn
            .read_line(until.min(silent).saturating_duration_since(now));
        let line = match (line, &self.call.interrupt) {
            (_, Some(stop)) if stop.is_stopped() => return Err(Error::Interrupted),
            (Err(Error::Timeout(_)), _) if until < silent => return Ok(None),
            (line, _) => line?.ok_or(Error::Closed)?,
        };
        Ok(Some(ControlLine::parse(&line)?))
    }

    /// Answers the last line with `OK <text>`.
    pub fn answer(&mut self, text: &str) -> Result<()> {
        self.call
            .conn
            .write_all(Reply::ok(text).encode().as_bytes())
    }
}

impl TrackerClient {
    /// `PUNCH <peer> <port>`: where `peer` listens, once the tracker told
    /// it to punch towards us (we connect from local `port`).
    pub fn punch(&self, peer: &PeerId, port: u16) -> Result<SocketAddr> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let req = TrackerRequest::Punch { peer: *peer, port };
        call.send(&req.encode())?;
        let reply = call.reply()?;
        reply
            .parse()
            .map_err(|_| ParseError::BadReply(reply.chars().take(80).collect()).into())
    }

    /// `RELAY <peer>`: a token to join a relayed session with `peer`.
    pub fn relay(&self, peer: &PeerId) -> Result<Token> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        call.send(&TrackerRequest::Relay { peer: *peer }.encode())?;
        let reply = call.reply()?;
        reply
            .parse()
            .map_err(|()| ParseError::BadReply(reply.chars().take(80).collect()).into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::net::tls::Tls;
    use crate::peer::tracker_pin::TrackerPin;
    use crate::tracker::nat::tests::{tracker_with, Running};
    use crate::tracker::nat::NatOptions;

    /// A control connection to a tracker that pings every `ping`.
    fn holding(ping: Duration) -> (Running, Control) {
        let t = tracker_with(NatOptions {
            ping,
            ..NatOptions::default()
        });
        let at = t.addr.to_string();
        let pin = TrackerPin::new(&at, Some(t.tls.id()), None).expect("a pin");
        let client = TrackerClient::new(at, 1, Tls::ephemeral(), Arc::new(pin));
        let control = client.listen().expect("a control connection");
        (t, control)
    }

    /// A control connection is read until the time asked, not until the
    /// tracker's next ping (every 25 s): a peer that must ask `WHOAMI`
    /// again in 2 s does so in 2 s. The tracker's pings still come through.
    #[test]
    fn a_control_connection_is_read_until_the_time_asked_not_the_next_ping() {
        let hold = Duration::from_millis(300);
        let (_quiet, mut control) = holding(Duration::from_secs(60));
        let asked = Instant::now();
        let line = control.next_by(asked + hold).expect("silence is no error");
        let took = asked.elapsed();
        assert!(line.is_none(), "{line:?}");
        assert!(
            took >= hold && took < hold + Duration::from_secs(1),
            "{took:?}"
        );

        let (_pinging, mut control) = holding(Duration::from_millis(50));
        let line = control.next_by(Instant::now() + Duration::from_secs(5));
        assert_eq!(line.expect("a line"), Some(ControlLine::Ping));
    }
}
