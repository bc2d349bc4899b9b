//! The tracker calls for peers behind NAT (see `protocol::nat_msg`).

use super::TrackerClient;
use crate::bounds::TRACKER_DEADLINE;
use crate::error::Result;
use crate::protocol::nat_msg::Reflection;
use crate::protocol::TrackerRequest;

impl TrackerClient {
    /// `WHOAMI <listen port>`: the address the tracker sees this peer at,
    /// and whether it reached our chunk server there.
    pub fn whoami(&self) -> Result<Reflection> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let req = TrackerRequest::WhoAmI {
            port: Some(self.listen_port),
        };
        call.send(&req.encode())?;
        Ok(Reflection::parse(&call.reply()?)?)
    }
}
