use std::net::SocketAddr;

use stun_types::attribute::{AttributeType, RawAttribute, Username, XorMappedAddress};
use stun_types::message::{
    BINDING, IntegrityAlgorithm, Message, MessageClass, MessageIntegrityCredentials, MessageWrite,
    MessageWriteExt, MessageWriteVec, ShortTermCredentials,
};

use super::*;

const CLIENT_UFRAG: &str = "cliU";

fn remote(fingerprint: Fingerprint) -> RemoteIce {
    RemoteIce {
        ufrag: CLIENT_UFRAG.to_string(),
        pwd: "clientpasswordclientpass".to_string(),
        fingerprint,
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn agent(max_peers: usize) -> Agent {
    let config = AgentConfig {
        max_peers,
        ..AgentConfig::default()
    };
    Agent::new(Certificate::generate().unwrap(), config, at(1000)).unwrap()
}

/// A Binding request as a browser sends it: USERNAME, optional USE-CANDIDATE,
/// MESSAGE-INTEGRITY with `pwd`, FINGERPRINT.
fn check(username: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    let mut m = Message::builder_request(BINDING, MessageWriteVec::new());
    m.add_attribute(&Username::new(username).unwrap()).unwrap();
    if nominate {
        m.add_attribute(&RawAttribute::new(AttributeType::new(0x0025), &[]))
            .unwrap();
    }
    let creds = MessageIntegrityCredentials::from(ShortTermCredentials::new(pwd.to_string()));
    m.add_message_integrity(&creds, IntegrityAlgorithm::Sha1)
        .unwrap();
    m.add_fingerprint().unwrap();
    m.finish()
}

type Sent = Vec<(SocketAddr, Vec<u8>)>;

fn feed(agent: &mut Agent, now: Instant, from: SocketAddr, bytes: &[u8]) -> Sent {
    let mut sent = Vec::new();
    agent.handle_datagram(now, from, bytes, &mut |to, d| sent.push((to, d.to_vec())));
    sent
}

fn events(agent: &mut Agent) -> Vec<Event> {
    std::iter::from_fn(|| agent.poll_event()).collect()
}

#[test]
fn a_valid_check_is_answered_with_integrity_and_the_mapped_address() {
    let mut a = agent(4);
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    assert_eq!(local.ufrag.len(), 8);
    assert_eq!(local.pwd.len(), 24);
    let from: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    let req = check(&format!("{}:{CLIENT_UFRAG}", local.ufrag), &local.pwd, true);
    let sent = feed(&mut a, at(1100), from, &req);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, from);
    let resp = Message::from_bytes(&sent[0].1).unwrap();
    assert!(resp.has_class(MessageClass::Success));
    assert_eq!(
        resp.transaction_id(),
        Message::from_bytes(&req).unwrap().transaction_id()
    );
    let creds = MessageIntegrityCredentials::from(ShortTermCredentials::new(local.pwd.clone()));
    assert!(resp.validate_integrity(&creds).is_ok());
    let mapped = resp.attribute::<XorMappedAddress>().unwrap();
    assert_eq!(mapped.addr(resp.transaction_id()), from);
    match events(&mut a).as_slice() {
        [
            Event::Checked {
                media: 7,
                addr,
                nominated: true,
            },
        ] => assert_eq!(*addr, from),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.stats().stun_answered, 1);
}

#[test]
fn bad_integrity_unknown_ufrag_and_malformed_are_counted_never_answered() {
    let mut a = agent(4);
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    let from: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    let user = format!("{}:{CLIENT_UFRAG}", local.ufrag);

    assert!(
        feed(
            &mut a,
            at(1100),
            from,
            &check(&user, "wrongpasswordwrongpassw", false)
        )
        .is_empty()
    );
    assert_eq!(a.stats().stun_bad_integrity, 1);

    assert!(
        feed(
            &mut a,
            at(1100),
            from,
            &check(&format!("nobody:{CLIENT_UFRAG}"), &local.pwd, false)
        )
        .is_empty()
    );
    assert!(
        feed(
            &mut a,
            at(1100),
            from,
            &check(&format!("{}:other", local.ufrag), &local.pwd, false)
        )
        .is_empty()
    );
    assert_eq!(a.stats().stun_unknown_ufrag, 2);

    assert!(feed(&mut a, at(1100), from, &[0, 1, 0, 0, 1, 2, 3]).is_empty());
    let mut no_user = Message::builder_request(BINDING, MessageWriteVec::new());
    no_user.add_fingerprint().unwrap();
    assert!(feed(&mut a, at(1100), from, &no_user.finish()).is_empty());
    assert_eq!(a.stats().stun_malformed, 2);

    let indication = Message::builder_indication(BINDING, MessageWriteVec::new()).finish();
    assert!(feed(&mut a, at(1100), from, &indication).is_empty());
    assert_eq!(a.stats().stun_other, 1);
    assert!(events(&mut a).is_empty());
}

#[test]
fn dtls_from_an_unchecked_address_is_counted_and_starts_nothing() {
    let mut a = agent(4);
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    let client: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    let spoofer: SocketAddr = "203.0.113.66:5000".parse().unwrap();
    let hello = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(feed(&mut a, at(1100), spoofer, &hello).is_empty());
    assert!(feed(&mut a, at(1100), client, &hello).is_empty());
    assert_eq!(a.stats().dtls_unchecked, 2);

    // After a check from `client`, its DTLS reaches the handshake (this record is junk, which
    // dimpl discards); the spoofer's still does not.
    feed(
        &mut a,
        at(1200),
        client,
        &check(
            &format!("{}:{CLIENT_UFRAG}", local.ufrag),
            &local.pwd,
            false,
        ),
    );
    feed(&mut a, at(1300), client, &hello);
    feed(&mut a, at(1300), spoofer, &hello);
    assert_eq!(a.stats().dtls_unchecked, 3);
}

#[test]
fn the_table_is_bounded_and_removal_frees_a_slot() {
    let mut a = agent(2);
    let r = remote(Fingerprint([0; 32]));
    let one = a.add_peer(at(1000), 1, &r).unwrap();
    a.add_peer(at(1000), 2, &r).unwrap();
    assert_eq!(a.add_peer(at(1000), 3, &r), Err(AddPeerError::Full));
    // The same media again replaces its entry (new credentials), still within bounds.
    let again = a.add_peer(at(1000), 1, &r).unwrap();
    assert_ne!(again.ufrag, one.ufrag);
    a.remove_peer(2);
    a.remove_peer(2);
    assert!(a.add_peer(at(1000), 3, &r).is_ok());
    assert_eq!(a.peer_count(), 2);
    // The replaced credentials are forgotten.
    let from: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    feed(
        &mut a,
        at(1100),
        from,
        &check(&format!("{}:{CLIENT_UFRAG}", one.ufrag), &one.pwd, false),
    );
    assert_eq!(a.stats().stun_unknown_ufrag, 1);
}

#[test]
fn an_unfinished_handshake_fails_at_its_deadline() {
    let mut a = agent(4);
    a.add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    assert_eq!(a.poll_timeout(), Some(at(11_000)));
    a.handle_timeout(at(10_999), &mut |_, _| {});
    assert!(events(&mut a).is_empty());
    a.handle_timeout(at(11_000), &mut |_, _| {});
    match events(&mut a).as_slice() {
        [
            Event::Failed {
                media: 7,
                reason: FailReason::Timeout,
            },
        ] => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(a.peer_count(), 0);
    assert_eq!(a.stats().dtls_failed, 1);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn checked_addresses_per_peer_are_bounded() {
    let mut a = agent(4);
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    let user = format!("{}:{CLIENT_UFRAG}", local.ufrag);
    for port in 0..(MAX_CHECKED_ADDRS as u16 + 2) {
        let from = SocketAddr::from(([198, 51, 100, 9], 5000 + port));
        feed(&mut a, at(1100), from, &check(&user, &local.pwd, false));
    }
    assert_eq!(a.by_addr.len(), MAX_CHECKED_ADDRS);
    a.remove_peer(7);
    assert!(a.by_addr.is_empty() && a.by_ufrag.is_empty());
}

#[test]
fn the_first_valid_check_latches_until_a_nominated_one_moves_it() {
    let mut a = agent(4);
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint([0; 32])))
        .unwrap();
    let user = format!("{}:{CLIENT_UFRAG}", local.ufrag);
    let first: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    let second: SocketAddr = "198.51.100.9:5001".parse().unwrap();
    let reported = |a: &mut Agent| -> Vec<(SocketAddr, bool)> {
        events(a)
            .into_iter()
            .map(|e| match e {
                Event::Checked {
                    addr, nominated, ..
                } => (addr, nominated),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    feed(&mut a, at(1100), first, &check(&user, &local.pwd, false));
    assert_eq!(reported(&mut a), [(first, false)]);
    // A plain check from elsewhere is answered but moves nothing.
    assert_eq!(
        feed(&mut a, at(1200), second, &check(&user, &local.pwd, false)).len(),
        1
    );
    assert!(reported(&mut a).is_empty());
    // Consent from the latched address is reported (activity).
    feed(&mut a, at(1300), first, &check(&user, &local.pwd, false));
    assert_eq!(reported(&mut a), [(first, false)]);
    // A nominated check moves the latch; then only that address is reported.
    feed(&mut a, at(1400), second, &check(&user, &local.pwd, true));
    assert_eq!(reported(&mut a), [(second, true)]);
    feed(&mut a, at(1500), first, &check(&user, &local.pwd, false));
    assert!(reported(&mut a).is_empty());
    feed(&mut a, at(1600), second, &check(&user, &local.pwd, false));
    assert_eq!(reported(&mut a), [(second, false)]);
}

/// ICE check, then a whole DTLS handshake of a dimpl client through the agent, datagrams
/// passed by hand: the agent reports `Connected` with the keys the client exported
/// (RFC 5764 section 4.2 split), counts the handshake, and keeps no handshake state once
/// the linger is over.
#[test]
fn check_then_handshake_gives_the_clients_keys() {
    use dimpl::{Dtls, Output};

    let mut a = agent(4);
    let client_cert = Certificate::generate().unwrap();
    let local = a
        .add_peer(at(1000), 7, &remote(Fingerprint::of_der(client_cert.der())))
        .unwrap();
    let from: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    feed(
        &mut a,
        at(1010),
        from,
        &check(&format!("{}:{CLIENT_UFRAG}", local.ufrag), &local.pwd, true),
    );
    assert!(matches!(events(&mut a).as_slice(), [Event::Checked { .. }]));

    let std_now = std::time::Instant::now();
    let cfg = dtls::config(std::time::Duration::from_secs(10)).unwrap();
    let mut client = Dtls::new_12(cfg, client_cert.dtls().clone(), std_now);
    client.set_active(true);
    client.handle_timeout(std_now).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut client_km = None;
    let mut keys = None;
    for round in 0..20u64 {
        let mut to_server = Vec::new();
        loop {
            match client.poll_output(&mut buf) {
                Output::Packet(p) => to_server.push(p.to_vec()),
                Output::Timeout(_) => break,
                Output::KeyingMaterial(km, profile) => client_km = Some((km.to_vec(), profile)),
                _ => {}
            }
        }
        for p in to_server {
            for (to, d) in feed(&mut a, at(1020 + round), from, &p) {
                assert_eq!(to, from);
                client.handle_packet(&d).unwrap();
            }
        }
        for e in events(&mut a) {
            match e {
                Event::Connected { media: 7, keys: k } => keys = Some(k),
                other => panic!("{other:?}"),
            }
        }
        if keys.is_some() && client_km.is_some() {
            break;
        }
    }
    let (km, profile) = client_km.unwrap();
    let keys = keys.unwrap();
    let expected = SrtpKeys::from_exporter(&km, profile).unwrap();
    assert_eq!(keys.suite, expected.suite);
    assert_eq!(keys.client, expected.client);
    assert_eq!(keys.server, expected.server);
    assert_eq!(a.stats().handshakes_done, 1);

    // After the linger, no handshake state; the next deadline is consent.
    let after = at(1100) + DTLS_LINGER;
    a.handle_timeout(after, &mut |_, _| {});
    let p = &a.peers[a.by_media[&7]];
    assert!(matches!(
        p.as_ref().unwrap().state,
        State::Connected { linger: None }
    ));
    assert!(a.poll_timeout().unwrap() > after);
    // Consent expires 30 s after the last check or the handshake.
    a.handle_timeout(at(1100) + Duration::from_secs(30), &mut |_, _| {});
    assert!(matches!(
        events(&mut a).as_slice(),
        [Event::Failed {
            media: 7,
            reason: FailReason::ConsentExpired
        }]
    ));
    assert_eq!(a.stats().consent_expired, 1);
}
