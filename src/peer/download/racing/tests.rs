//! The manifest fetch's decisions, on a simulated clock.

use std::net::SocketAddr;

use super::*;

fn peers(n: u16) -> Vec<PeerAddr> {
    (0..n)
        .map(|i| PeerAddr::unpinned(SocketAddr::from(([127, 0, 0, 1], 1000 + i))))
        .collect()
}

fn gone() -> Error {
    Error::Closed
}

#[test]
fn a_new_peer_is_asked_every_hedge_up_to_the_parallel_bound() {
    let t0 = Instant::now();
    let all = peers(MANIFEST_PARALLEL as u16 + 2);
    let mut r = Racing::new(&all, t0, Duration::from_secs(60));
    assert_eq!(r.launch(t0).map(|a| a.peer), Some(all[0].clone()));
    assert!(r.launch(t0).is_none(), "the next waits for the hedge");
    assert_eq!(r.wait(t0), RECHECK.min(MANIFEST_HEDGE));
    let mut t = t0;
    for peer in &all[1..MANIFEST_PARALLEL] {
        t += MANIFEST_HEDGE;
        assert!(r.launch(t - Duration::from_millis(1)).is_none());
        assert_eq!(r.launch(t).map(|a| a.peer).as_ref(), Some(peer));
    }
    t += MANIFEST_HEDGE * 10;
    assert!(r.launch(t).is_none(), "{MANIFEST_PARALLEL} at a time");
    assert_eq!(
        r.wait(t),
        RECHECK,
        "nothing to launch: only a reply or a stop"
    );
}

#[test]
fn a_failure_lets_the_next_peer_be_asked_at_once() {
    let t0 = Instant::now();
    let all = peers(3);
    let mut r = Racing::new(&all, t0, Duration::from_secs(60));
    let first = r.launch(t0).expect("first");
    let t1 = t0 + Duration::from_millis(10);
    r.failed(first, &gone(), t1);
    assert_eq!(r.launch(t1).map(|a| a.peer), Some(all[1].clone()));
    assert_eq!(r.failed, vec![all[0].clone()]);
    assert_eq!(r.usable(&all), all[1..].to_vec());
}

#[test]
fn a_liar_is_set_apart_from_the_unreachable() {
    let t0 = Instant::now();
    let all = peers(2);
    let mut r = Racing::new(&all, t0, Duration::from_secs(60));
    let first = r.launch(t0).expect("first");
    r.failed(first, &Error::Verification("false".into()), t0);
    let second = r.launch(t0).expect("second");
    r.failed(second, &gone(), t0);
    assert_eq!(
        (r.lied.clone(), r.failed.clone()),
        (vec![all[0].clone()], vec![all[1].clone()])
    );
    assert!(r.exhausted());
    assert_eq!(r.tried(), 2);
    assert!(r.usable(&all).is_empty());
}

#[test]
fn a_busy_peer_is_asked_again_after_a_doubling_pause_within_the_patience() {
    let t0 = Instant::now();
    let all = peers(1);
    let mut r = Racing::new(&all, t0, Duration::from_secs(4));
    let ask = r.launch(t0).expect("first");
    r.failed(ask, &Error::Busy, t0);
    assert!(!r.exhausted(), "queued again");
    assert!(r.launch(t0 + Duration::from_millis(999)).is_none());
    assert_eq!(
        r.wait(t0 + Duration::from_millis(950)),
        Duration::from_millis(50)
    );
    let t1 = t0 + Duration::from_secs(1);
    let ask = r.launch(t1).expect("after 1 s");
    r.failed(ask, &Error::Busy, t1);
    assert!(r.launch(t1 + Duration::from_millis(1999)).is_none());
    let t2 = t1 + Duration::from_secs(2);
    let ask = r.launch(t2).expect("after 2 s more");
    // 3 s in, a 4 s pause would end past the 4 s patience.
    r.failed(ask, &Error::Busy, t2);
    assert!(r.exhausted());
    assert_eq!(r.failed, all);
    assert_eq!(r.usable(&all), Vec::new());
}
