use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Arc;

use super::Reach;
use crate::net::tls::Tls;
use crate::peer::portmap::{Config, Discover, MapError, PortMap};
use crate::peer::tracker_client::TrackerClient;
use crate::peer::tracker_pin::TrackerPin;
use crate::testing::wait_for;
use crate::tracker::nat::tests::tracker_with;
use crate::tracker::nat::NatOptions;

/// A peer the tracker cannot dial back, whose router has not answered
/// yet, asks `WHOAMI` again every `MAPPING_RECHECK` and keeps one control
/// connection open across those questions: the tracker sees it from the
/// same address throughout, so it can bring others here at any time.
#[test]
fn the_control_connection_stays_open_while_whoami_is_asked_again() {
    let t = tracker_with(NatOptions::default());
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let at = t.addr.to_string();
    let pin = TrackerPin::new(&at, Some(t.tls.id()), None).expect("a pin");
    let tls = Tls::ephemeral();
    let client = TrackerClient::new(at, port, tls.clone(), Arc::new(pin));
    // A router that has not answered: the first attempt ends when `answer`
    // is dropped.
    let (answer, asked) = mpsc::channel::<()>();
    let discover: Discover = Box::new(move || {
        let _ = asked.recv();
        Err(MapError::NoRouter("none in this test".into()))
    });
    let map = PortMap::spawn_with(discover, port, Config::default(), true).expect("spawn");
    let map = Arc::new(map);
    let reach = Reach::spawn(&client, Arc::new(|_| {}), Arc::new(|_| {}), Some(map))
        .expect("the reach thread");

    wait_for("a control connection", || {
        t.nat.listeners.observed(&tls.id()).is_some()
    });
    let first = t.nat.listeners.observed(&tls.id());
    let answered = reach.standing().expect("an answer").at;
    // Asked again after MAPPING_RECHECK, and (had it closed the control
    // connection to ask) holding one again.
    wait_for("WHOAMI asked again", || {
        let asked = reach.standing().is_some_and(|s| s.at > answered);
        asked && reach.view().is_some_and(|v| v.control)
    });
    assert!(reach.standing().is_some_and(|s| !s.reachable));
    assert_eq!(t.nat.listeners.observed(&tls.id()), first);
    reach.stop();
    drop(answer);
}
