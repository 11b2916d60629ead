//! STUN on the media port through the Agent: any datagrams, some of them checks signed with
//! a peer's real credentials, from a few addresses. Never a panic; a success response goes
//! only to a check that carried the right credentials; every STUN datagram is answered or
//! counted once.
#![no_main]

use std::net::SocketAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::time::Instant;
use livechat_rtc::{Agent, AgentConfig, Fingerprint, RemoteIce};

#[derive(Arbitrary, Debug)]
enum Datagram<'a> {
    Raw(&'a [u8]),
    /// A check for peer `peer % 3` signed with its pwd (or a wrong one), optionally with
    /// garbage appended after the FINGERPRINT.
    Check { peer: u8, right_pwd: bool, nominate: bool, tail: &'a [u8] },
}

#[derive(Arbitrary, Debug)]
struct Step<'a> {
    from: u8,
    advance_ms: u16,
    datagram: Datagram<'a>,
}

fuzz_target!(|steps: Vec<Step<'_>>| {
    let mut now = Instant::from_millis(1000);
    let config = AgentConfig { max_peers: 3, ..AgentConfig::default() };
    let Ok(mut agent) = Agent::new(livechat_fuzz::rtc_certificate(), config, now) else {
        return;
    };
    let remote = RemoteIce {
        ufrag: "cli1".into(),
        pwd: "clientpasswordclientpw".into(),
        fingerprint: Fingerprint([0; 32]),
    };
    let locals: Vec<_> = (0..3u64)
        .map(|m| agent.add_peer(now, m, &remote).expect("room for 3"))
        .collect();
    let mut stun_in = 0u64;
    for step in steps.iter().take(256) {
        now = now + livechat_core::time::Duration::from_millis(u64::from(step.advance_ms));
        let from = SocketAddr::from(([198, 51, 100, step.from % 4], 5000));
        let (bytes, signed) = match &step.datagram {
            Datagram::Raw(b) => (b.to_vec(), false),
            Datagram::Check { peer, right_pwd, nominate, tail } => {
                let l = &locals[usize::from(*peer % 3)];
                let pwd = if *right_pwd { l.pwd.as_str() } else { "wrongpasswordwrongpassword" };
                let mut b = livechat_fuzz::stun_check(&format!("{}:cli1", l.ufrag), pwd, *nominate);
                b.extend_from_slice(tail);
                (b, *right_pwd && tail.is_empty())
            }
        };
        if matches!(bytes.first(), Some(0..=3)) {
            stun_in += 1;
        }
        let before = agent.stats();
        let mut answers = 0;
        agent.handle_datagram(now, from, &bytes, &mut |to, d| {
            assert_eq!(to, from);
            assert_eq!(d[0], 0x01, "only success responses are sent");
            answers += 1;
        });
        if !signed && answers > 0 {
            // A raw datagram may be a valid check only by copying a real one's HMAC, which
            // the fuzzer cannot; the answered counter must agree with what was sent.
            assert_eq!(agent.stats().stun_answered, before.stun_answered + answers);
        }
        while agent.poll_event().is_some() {}
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now, &mut |_, _| {});
        }
        while agent.poll_event().is_some() {}
    }
    let s = agent.stats();
    assert_eq!(
        s.stun_answered + s.stun_bad_integrity + s.stun_unknown_ufrag + s.stun_malformed + s.stun_other,
        stun_in
    );
});
