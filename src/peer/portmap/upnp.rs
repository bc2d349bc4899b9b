//! A UPnP IGD client through `igd-next`'s blocking API: SSDP discovery
//! (`M-SEARCH` to 239.255.255.250:1900, listening `UPNP_SEARCH`), then
//! SOAP over HTTP to the gateway's control URL: `GetExternalIPAddress`,
//! `AddPortMapping`, `DeletePortMapping`. The crate bounds each SOAP call
//! (10 s) and each body (1 MiB), and trusts a device description only
//! from the address that answered the search.
//!
//! Asking for the port we listen on first: if the router says the port is
//! taken (718, another client's) the router picks one (`AddAnyPortMapping`,
//! or random tries); if it only takes permanent leases (725), the lease is
//! 0 and the mapping lasts until we delete it (or the router restarts).

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use igd_next::{
    AddAnyPortError, AddPortError, Gateway, GatewayIpVersion, PortMappingProtocol, SearchOptions,
};

use super::{gateway, Granted, MapError, Protocol, Router};
use crate::bounds::UPNP_SEARCH;

/// What a mapping is called in the router's list.
const DESCRIPTION: &str = "p2pshare";

/// A gateway found by SSDP, and our address that faces it.
pub struct Upnp {
    gateway: Gateway,
    local: std::net::Ipv4Addr,
}

impl Upnp {
    /// Searches the LAN for an IGD for at most `UPNP_SEARCH` (the search
    /// sent from `bind`).
    pub fn discover(bind: IpAddr) -> Result<Upnp, MapError> {
        let mut options = SearchOptions::default();
        options.bind_addr = SocketAddr::new(bind, 0);
        options.timeout = Some(UPNP_SEARCH);
        options.single_search_timeout = Some(UPNP_SEARCH);
        options.gateway_ip_version = GatewayIpVersion::V4;
        let gateway =
            igd_next::search_gateway(options).map_err(|e| MapError::Upnp(e.to_string()))?;
        let local = match gateway::local_ip_toward(gateway.addr.ip(), bind).map_err(MapError::Io)? {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => return Err(MapError::NoExternal(ip.into())),
        };
        Ok(Upnp { gateway, local })
    }

    /// Maps `external` → `internal` for `secs`, falling back as the module
    /// says; the external port and lease granted.
    fn add(&self, internal: SocketAddr, external: u16, secs: u32) -> Result<(u16, u32), MapError> {
        let tcp = PortMappingProtocol::TCP;
        match self
            .gateway
            .add_port(tcp, external, internal, secs, DESCRIPTION)
        {
            Ok(()) => Ok((external, secs)),
            Err(AddPortError::OnlyPermanentLeasesSupported) if secs != 0 => {
                self.add(internal, external, 0)
            }
            Err(AddPortError::PortInUse | AddPortError::SamePortValuesRequired) => {
                match self.gateway.add_any_port(tcp, internal, secs, DESCRIPTION) {
                    Ok(port) => Ok((port, secs)),
                    Err(AddAnyPortError::OnlyPermanentLeasesSupported) => self
                        .gateway
                        .add_any_port(tcp, internal, 0, DESCRIPTION)
                        .map(|port| (port, 0))
                        .map_err(upnp_error),
                    Err(e) => Err(upnp_error(e)),
                }
            }
            Err(e) => Err(upnp_error(e)),
        }
    }
}

fn upnp_error(e: impl std::fmt::Display) -> MapError {
    MapError::Upnp(e.to_string())
}

impl Router for Upnp {
    fn protocol(&self) -> Protocol {
        Protocol::Upnp
    }

    fn map(&mut self, internal: u16, wanted: u16, lease: Duration) -> Result<Granted, MapError> {
        let ip = match self.gateway.get_external_ip().map_err(upnp_error)? {
            IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            other => return Err(MapError::NoExternal(other)),
        };
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        let inside = SocketAddrV4::new(self.local, internal);
        let (port, secs) = self.add(inside.into(), wanted, secs)?;
        Ok(Granted {
            protocol: Protocol::Upnp,
            internal: inside,
            external: SocketAddrV4::new(ip, port),
            // Lease 0: permanent, until deleted.
            lease: (secs != 0).then(|| Duration::from_secs(secs.into())),
        })
    }

    fn unmap(&mut self, granted: &Granted) -> Result<(), MapError> {
        self.gateway
            .remove_port(PortMappingProtocol::TCP, granted.external.port())
            .map_err(upnp_error)
    }
}
