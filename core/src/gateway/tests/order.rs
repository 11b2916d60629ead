//! PROTOCOL.md's order of checks where a request fails more than one: size first (1005,
//! echoing a readable `id`), field values (1004) before state (2xxx, 3xxx), and for chat
//! the channel (2000) and membership (3002) before the content (3000, 3001).

use serde_json::json;

use super::{Sim, code};
use crate::config::Limits;
use crate::gateway::Frame;

#[test]
fn chat_content_is_checked_after_the_channel_and_the_membership() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("a");
    let b = s.user("b");
    s.req(a, json!({"op":10,"d":{"channel_id":"c"}}));
    assert_eq!(s.join(a, "c", 1)[0]["op"], 200);
    let long = "x".repeat(1025);
    for content in ["", long.as_str()] {
        let to_nowhere = json!({"op":20,"d":{"channel_id":"nope","content":content}});
        assert_eq!(code(&s.req(a, to_nowhere)), 2000, "unknown channel first");
        let not_member = json!({"op":20,"d":{"channel_id":"c","content":content}});
        assert_eq!(code(&s.req(b, not_member)), 3002, "then membership");
    }
    let empty = json!({"op":20,"d":{"channel_id":"c","content":""},"id":4});
    let r = s.req(a, empty);
    assert_eq!(code(&r), 3000);
    assert_eq!(r[0]["id"], 4);
    let too_long = json!({"op":20,"d":{"channel_id":"c","content":long}});
    assert_eq!(code(&s.req(a, too_long)), 3001);
    // A bad escape is a field's form, checked before any state.
    let bad = br#"{"op":20,"d":{"channel_id":"nope","content":"\x"}}"#;
    assert_eq!(code(&s.send_raw(a, bad)), 1004);
}

#[test]
fn a_capacity_below_the_members_is_1004_before_the_creator_check() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("a");
    let b = s.user("b");
    s.req(a, json!({"op":10,"d":{"channel_id":"c"}}));
    assert_eq!(s.join(a, "c", 1)[0]["op"], 200);
    assert_eq!(s.join(b, "c", 2)[0]["op"], 200);
    s.take(a);
    let shrink = json!({"op":13,"d":{"channel_id":"c","capacity":1}});
    let r = s.req(b, shrink.clone());
    assert_eq!(code(&r), 1004, "{r:?}");
    assert_eq!(
        r[0]["d"]["reason"],
        "capacity below the current member count"
    );
    let rename = json!({"op":13,"d":{"channel_id":"c","name":"x"}});
    assert_eq!(
        code(&s.req(b, rename)),
        2002,
        "a valid update by another is 2002"
    );
    let elsewhere = json!({"op":13,"d":{"channel_id":"nope","capacity":1}});
    assert_eq!(
        code(&s.req(b, elsewhere)),
        2000,
        "the channel is found first"
    );
    assert_eq!(code(&s.req(a, shrink)), 1004, "the creator gets it too");
    let fits = s.req(a, json!({"op":13,"d":{"channel_id":"c","capacity":2}}));
    assert!(fits.iter().any(|f| f["d"]["capacity"] == 2), "{fits:?}");
}

#[test]
fn an_oversized_frame_echoes_its_id() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let pad = "x".repeat(crate::config::MAX_INBOUND_FRAME);
    let with_id = format!(r#"{{"op":1,"id":77,"pad":"{pad}"}}"#);
    let r = s.send_raw(c, with_id.as_bytes());
    assert_eq!(code(&r), 1005);
    assert_eq!(r[0]["id"], 77);
    assert!(r[0]["d"].get("req_op").is_none(), "the op is not acted on");
    // Unreadable: 1005 all the same, without an id.
    let broken = format!(r#"{{"op":1,"id":78,"pad":"{pad}""#);
    let r = s.send_raw(c, broken.as_bytes());
    assert_eq!(code(&r), 1005);
    assert!(r[0].get("id").is_none(), "{:?}", r[0]);
}

#[test]
fn a_frame_the_driver_dropped_echoes_the_id_it_read() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let dropped = |id| Frame::Oversized {
        len: crate::config::MAX_INBOUND_FRAME + 1,
        id,
    };
    s.gw.handle_frame(s.now, c, dropped(Some(31)), &mut s.rec);
    let r = s.take(c);
    assert_eq!(code(&r), 1005);
    assert_eq!(r[0]["id"], 31);
    s.gw.handle_frame(s.now, c, dropped(None), &mut s.rec);
    let r = s.take(c);
    assert_eq!(code(&r), 1005);
    assert!(r[0].get("id").is_none(), "{:?}", r[0]);
    // Whatever length the driver gives, it is over the limit: never taken for a request.
    let under = Frame::Oversized {
        len: 3,
        id: Some(5),
    };
    s.gw.handle_frame(s.now, c, under, &mut s.rec);
    assert_eq!(code(&s.take(c)), 1005);
}
