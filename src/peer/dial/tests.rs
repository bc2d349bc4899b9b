//! The client against a real chunk server in-process on port 0: typed
//! replies, the pin, and a peer's ways tried in turn.

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::chunkset::ChunkSet;
use crate::error::Error;
use crate::manifest::{FileId, Manifest};
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::peer::library::Library;
use crate::peer::server::spawn_for_test;
use crate::server::ServerHandle;
use crate::storage::manifest_of;
use crate::testing::{temp_dir, TempDir};

/// A chunk server sharing 3000 bytes: its handle, address, id, the file's
/// key and bytes, and the file's directory (`tag`, one per test), removed
/// when dropped.
fn seeder(tag: &str) -> (ServerHandle, PeerAddr, FileKey, Vec<u8>, TempDir) {
    let dir = temp_dir(tag);
    let path = dir.join("f");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).expect("write");
    let manifest = manifest_of(&path).expect("hash");
    let key = FileKey {
        id: manifest.id(),
        secret: None,
    };
    let library = Arc::new(Library::default());
    library
        .add("f".into(), path, manifest, None)
        .expect("share");
    let (server, ours) = spawn_for_test(library);
    let at = PeerAddr::direct(server.local_addr(), Some(ours.id()));
    (server, at, key, data, dir)
}

#[test]
fn a_client_gets_typed_replies_from_a_chunk_server() {
    let (_server, at, key, data, _dir) = seeder("dial-client");
    let dialer = DirectDialer::new(Tls::ephemeral());
    let stop = StopSignal::new();
    let mut client = PeerClient::open(&dialer, &at, &key, &stop).expect("open");
    assert_eq!(client.version(), 2);
    let bytes = client.manifest(&key.listed()).expect("manifest");
    let manifest = Manifest::decode(&bytes).expect("decodes");
    assert_eq!(manifest.id(), key.id);
    let chunks = manifest.chunk_count();
    client
        .send_have(&key.listed(), &ChunkSet::empty(chunks))
        .expect("HAVE");
    let have = client.read_have(chunks, &RateCap::new(None)).expect("have");
    assert!(have.complete && have.set.is_complete());
    let chunk = manifest.chunk(0).expect("one chunk");
    let mut buf = vec![0; data.len()];
    let unlimited = RateCap::new(None);
    client.send_get(&key.listed(), chunk).expect("GET");
    assert_eq!(
        client.read_got(chunk, &unlimited, &mut buf).expect("got"),
        Got::Chunk(&data[..])
    );
    client.send_get(&FileId([0; 32]), chunk).expect("GET");
    let refused = client.read_got(chunk, &unlimited, &mut buf).expect("got");
    assert!(matches!(refused, Got::NotHere(_)), "{refused:?}");
}

#[test]
fn a_dialer_tries_each_way_and_holds_the_pin() {
    let (_server, at, key, _data, _dir) = seeder("dial-ways");
    let dialer = DirectDialer::new(Tls::ephemeral());
    let stop = StopSignal::new();
    // Nothing listens on port 1 of loopback: refused at once.
    let dead: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let both =
        PeerAddr::with_ways(at.id, vec![Way::Direct(dead), Way::Direct(at.shown())]).expect("ways");
    assert!(PeerClient::open(&dialer, &both, &key, &stop).is_ok());
    let impostor = PeerAddr::direct(at.shown(), Some(Tls::ephemeral().id()));
    let wrong = PeerClient::open(&dialer, &impostor, &key, &stop).err();
    assert!(matches!(wrong, Some(Error::WrongIdentity(_))), "{wrong:?}");
}
