//! Where the router is: the IPv4 default gateway from the kernel's routing
//! table (`/proc/net/route`, Linux), which NAT-PMP needs (it has no
//! discovery of its own), and which address of ours faces it (the internal
//! client a mapping points at).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// Longest routing table read: a host with thousands of routes is not a
/// home machine behind one router; its first 64 KiB still name the default.
const MAX_ROUTE_TABLE: u64 = 64 * 1024;

/// The default IPv4 gateway, if the routing table has one.
pub fn default_gateway() -> io::Result<Option<Ipv4Addr>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/proc/net/route")?
        .take(MAX_ROUTE_TABLE)
        .read_to_string(&mut text)?;
    Ok(parse_route_table(&text))
}

/// The gateway of the first default route (destination and mask 0, flags
/// up and gateway) in the text of `/proc/net/route`, whose addresses are
/// the hex of a network-order address read as a native `u32`: on a
/// little-endian machine `0101A8C0` is 192.168.1.1.
pub fn parse_route_table(text: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags, mask) = (
            hex(f.get(1)?)?,
            hex(f.get(2)?)?,
            hex(f.get(3)?)?,
            hex(f.get(7)?)?,
        );
        let default =
            dest == 0 && mask == 0 && flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
        (default && gw != 0).then(|| Ipv4Addr::from(gw.to_ne_bytes()))
    })
}

/// The address of ours that the kernel would send from to reach `to` (no
/// packet is sent: connecting a UDP socket only picks a route), or `bind`
/// when the peer listens on one address.
pub fn local_ip_toward(to: IpAddr, bind: IpAddr) -> io::Result<IpAddr> {
    if !bind.is_unspecified() {
        return Ok(bind);
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.connect(SocketAddr::new(to, super::wire::PORT))?;
    Ok(socket.local_addr()?.ip())
}

/// Whether `ip` is reachable from the internet as it is: not private,
/// shared (carrier NAT, 100.64/10), link-local, loopback or unspecified.
pub fn is_public(ip: Ipv4Addr) -> bool {
    let shared = ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64;
    !(ip.is_private() || shared || ip.is_link_local() || ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_an_address_the_internet_can_reach_is_public() {
        for ip in [
            "10.0.1.2",
            "172.16.0.1",
            "192.168.1.5",
            "100.64.0.1",
            "100.127.255.1",
            "169.254.1.1",
            "127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["11.99.0.1", "100.128.0.1", "8.8.8.8", "172.32.0.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
    use super::*;

    const TABLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";

    #[test]
    fn the_default_route_names_the_gateway() {
        assert_eq!(
            parse_route_table(TABLE),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
    }

    #[test]
    fn no_default_route_no_gateway() {
        let lan_only: String = TABLE.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(parse_route_table(&lan_only), None);
        // A default route that is down, or has no gateway (a point-to-point
        // link), names none either.
        assert_eq!(
            parse_route_table(&TABLE.replace("\t0003\t", "\t0002\t")),
            None
        );
        assert_eq!(
            parse_route_table(&TABLE.replace("\t0003\t", "\t0001\t")),
            None
        );
        // Garbage lines are skipped, never a panic.
        assert_eq!(parse_route_table("x\ny z\n\n\t\t\n"), None);
        assert_eq!(parse_route_table(""), None);
    }

    #[test]
    fn a_chosen_bind_address_is_the_local_one() {
        let bind: IpAddr = Ipv4Addr::new(10, 0, 1, 2).into();
        assert_eq!(
            local_ip_toward(Ipv4Addr::new(10, 0, 1, 1).into(), bind).ok(),
            Some(bind)
        );
        let lo = local_ip_toward(Ipv4Addr::LOCALHOST.into(), Ipv4Addr::UNSPECIFIED.into());
        assert_eq!(lo.ok(), Some(Ipv4Addr::LOCALHOST.into()));
    }
}
