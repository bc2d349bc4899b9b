use std::time::Duration;

use super::punch::{NOT_LISTENING, NOT_TO_ITSELF};
use super::tests::{client, tracker_with};
use super::{NatOptions, NAT_NOT_AUTHENTICATED};
use crate::bounds::PUNCH_PER_PEER;
use crate::error::Error;
use crate::net::tls::Tls;
use crate::protocol::nat_msg::ControlLine;
use crate::protocol::Connection;

const FIVE: Duration = Duration::from_secs(5);

/// `PUNCH` tells a listening peer where the asker is (the IP seen, the
/// port named) and the asker where the peer listens (likewise); it needs
/// a certificate and a listening peer, and stops at the per-peer bound.
#[test]
fn punch_introduces_two_peers_within_bounds() {
    let t = tracker_with(NatOptions::default());
    let (mut control, target) = client(&t);
    control.request("LISTEN 7000\n").expect("listening");
    let id = target.id();

    let mut plain = Connection::connect_addr(t.addr, FIVE).expect("connect");
    assert!(matches!(
        plain.request(&format!("PUNCH {id} 9\n")),
        Err(Error::Remote(e)) if e == NAT_NOT_AUTHENTICATED
    ));
    let (mut asker, _) = client(&t);
    let nobody = Tls::ephemeral().id();
    assert!(matches!(
        asker.request(&format!("PUNCH {nobody} 9\n")),
        Err(Error::Remote(e)) if e == NOT_LISTENING
    ));

    let mut itself =
        Connection::connect_tls(&t.addr.to_string(), &target, Some(t.tls.id()), FIVE).expect("tls");
    assert!(matches!(
        itself.request(&format!("PUNCH {id} 9\n")),
        Err(Error::Remote(e)) if e == NOT_TO_ITSELF
    ));

    for n in 0..PUNCH_PER_PEER {
        let there = asker.request(&format!("PUNCH {id} 4000\n")).expect("ok");
        assert_eq!(there, "127.0.0.1:7000", "introduction {n}");
        let line = control.read_line(FIVE).expect("a line").expect("open");
        let told = ControlLine::parse(&line).expect("a control line");
        assert_eq!(
            told,
            ControlLine::Punch("127.0.0.1:4000".parse().expect("addr"))
        );
        control.write_all(b"OK punching\n").expect("answer");
    }
    assert_eq!(t.nat.view().punching, PUNCH_PER_PEER);
    assert!(matches!(
        asker.request(&format!("PUNCH {id} 4000\n")),
        Err(Error::Busy)
    ));
}
