//! DTLS records from an address that passed an ICE check: the handshake sees any bytes and
//! any timing. Never a panic; the peer ends connected, failed (with one `Failed` event) or
//! still waiting, and a failed one is forgotten.
#![no_main]

use std::net::SocketAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::time::{Duration, Instant};
use livechat_rtc::{Agent, AgentConfig, Event, Fingerprint, RemoteIce};

#[derive(Arbitrary, Debug)]
struct Step<'a> {
    advance_ms: u16,
    /// The record; its first byte is moved into the DTLS range (20..=63).
    record: &'a [u8],
}

fuzz_target!(|steps: Vec<Step<'_>>| {
    let mut now = Instant::from_millis(1000);
    let Ok(mut agent) = Agent::new(livechat_fuzz::rtc_certificate(), AgentConfig::default(), now)
    else {
        return;
    };
    let remote = RemoteIce {
        ufrag: "cli1".into(),
        pwd: "clientpasswordclientpw".into(),
        fingerprint: Fingerprint([7; 32]),
    };
    let local = agent.add_peer(now, 1, &remote).expect("room");
    let from = SocketAddr::from(([198, 51, 100, 1], 5000));
    let check = livechat_fuzz::stun_check(&format!("{}:cli1", local.ufrag), &local.pwd, true);
    agent.handle_datagram(now, from, &check, &mut |_, _| {});
    let mut failed = 0;
    for step in steps.iter().take(128) {
        now = now + Duration::from_millis(u64::from(step.advance_ms));
        let mut record = step.record.to_vec();
        if let Some(b) = record.first_mut() {
            *b = 20 + *b % 44;
        }
        agent.handle_datagram(now, from, &record, &mut |to, _| assert_eq!(to, from));
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now, &mut |to, _| assert_eq!(to, from));
        }
        while let Some(e) = agent.poll_event() {
            if let Event::Failed { media: 1, .. } = e {
                failed += 1;
            }
        }
    }
    assert!(failed <= 1);
    if failed == 1 {
        assert_eq!(agent.peer_count(), 0);
    }
});
